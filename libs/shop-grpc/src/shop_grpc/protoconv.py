"""Conversions between proto well-known types and plain Python values."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from shop.common.v1 import money_pb2
from shop_grpc.money import Money


def timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(value if value.tzinfo else value.replace(tzinfo=UTC))
    return ts


def from_timestamp(ts: Timestamp) -> datetime:
    return ts.ToDatetime(tzinfo=UTC)


def money_to_proto(value: Money) -> money_pb2.Money:
    return money_pb2.Money(currency_code=value.currency, amount_minor=value.amount_minor)


def money_from_proto(value: money_pb2.Money) -> Money:
    return Money(value.currency_code, value.amount_minor)
