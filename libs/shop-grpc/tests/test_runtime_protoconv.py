"""Proto well-known types to plain values and back (shop_grpc.protoconv)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from shop.common.v1 import money_pb2
from shop_grpc import protoconv
from shop_grpc.money import Money


def test_a_time_keeps_its_instant_and_comes_back_in_utc():
    paris = datetime(2030, 6, 1, 14, 30, 5, 123456, tzinfo=timezone(timedelta(hours=2)))

    back = protoconv.from_timestamp(protoconv.timestamp(paris))

    assert back == paris
    assert back.tzinfo is UTC and back.hour == 12


def test_a_time_without_a_zone_is_taken_as_utc_and_none_stays_none():
    naive = datetime(2030, 1, 1, 8, 0)

    assert protoconv.timestamp(naive) == protoconv.timestamp(naive.replace(tzinfo=UTC))
    assert protoconv.timestamp(None) is None


def test_money_goes_over_the_wire_as_currency_and_minor_units():
    price = Money("EUR", 1999)

    sent = protoconv.money_to_proto(price)

    assert sent == money_pb2.Money(currency_code="EUR", amount_minor=1999)
    assert protoconv.money_from_proto(sent) == price
