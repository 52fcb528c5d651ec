"""idempotency: a request id answers again only the request it came with; what counts as the
same request is its fingerprint."""

from __future__ import annotations

import pytest

from shop.common.v1 import money_pb2
from shop.order.v1 import order_pb2
from shop.payment.v1 import payment_pb2
from shop_grpc.idempotency import REASON, RequestIdReused, check_replay, fingerprint


def order(request_id: str = "key-1", number: str = "4242424242424242", quantity: int = 1):
    return order_pb2.CreateOrderRequest(
        user_id="0b0e7c1e-2c4e-4c59-9a8a-0f6a7d1c2b3a",
        lines=[money_pb2.LineItem(product_id="widget", quantity=quantity)],
        card=payment_pb2.PaymentCard(number=number, exp_month=12, exp_year=2040, cvc="123"),
        request_id=request_id,
    )


def last_four_only(request: order_pb2.CreateOrderRequest) -> None:
    request.card.number = request.card.number[-4:]
    request.card.ClearField("cvc")


def test_the_same_content_is_the_same_request_whatever_its_request_id():
    assert fingerprint(order("key-1")) == fingerprint(order("key-2"))
    assert fingerprint(order(quantity=1)) != fingerprint(order(quantity=2))


def test_what_redact_blanks_is_no_part_of_the_fingerprint():
    other_card = order(number="4000000000004242")

    assert fingerprint(order(), redact=last_four_only) == fingerprint(
        other_card, redact=last_four_only
    )
    assert fingerprint(order()) != fingerprint(other_card)


def test_fields_this_server_does_not_know_change_no_fingerprint():
    # Field 99 varint 1: what a newer client may send.
    with_unknown = order_pb2.CreateOrderRequest.FromString(
        order().SerializeToString() + bytes([0x98, 0x06, 0x01])
    )

    assert with_unknown.SerializeToString() != order().SerializeToString()  # kept, unknown
    assert fingerprint(with_unknown) == fingerprint(order())


def test_a_stream_split_otherwise_is_another_request():
    # The two messages' bytes, joined, are the one message's.
    first, second = money_pb2.LineItem(product_id="a"), money_pb2.LineItem(quantity=1)
    whole = money_pb2.LineItem(product_id="a", quantity=1)
    assert first.SerializeToString() + second.SerializeToString() == whole.SerializeToString()

    assert fingerprint(first, second) != fingerprint(whole)


def test_a_replay_passes_only_with_the_stored_fingerprint_or_none_stored():
    check_replay("key-1", fingerprint(order()), fingerprint(order("key-1")))
    check_replay("key-1", None, fingerprint(order()))  # stored before fingerprints were kept

    with pytest.raises(RequestIdReused) as raised:
        check_replay("key-1", fingerprint(order()), fingerprint(order(quantity=2)))

    assert (raised.value.reason, raised.value.resource_name) == (REASON, "key-1")
