"""OrderService over real gRPC on loopback, with fake dependencies behind it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest

from shop.common.v1 import money_pb2
from shop.order.v1 import order_pb2, order_pb2_grpc
from shop.payment.v1 import payment_pb2
from shop_grpc.money import Money
from shop_grpc.testing import id_for, rpc_fails, serving
from shop_order.entrypoints.grpc import registration

ALICE = id_for("alice")
CARD = payment_pb2.PaymentCard(number="4242424242424242", exp_month=12, exp_year=2040, cvc="123")


@pytest.fixture(autouse=True)
def alice_exists(world) -> None:
    world.users.known.add(ALICE)


@pytest.fixture
async def stub(assemble_order) -> AsyncIterator[order_pb2_grpc.OrderServiceStub]:
    async with (
        assemble_order(0.5) as (settings, app),
        serving(settings.server, [registration(app.servicer)]) as channel,
    ):
        yield order_pb2_grpc.OrderServiceStub(channel)


def line(product_id: str, quantity: int) -> money_pb2.LineItem:
    return money_pb2.LineItem(product_id=product_id, quantity=quantity)


async def test_create_order_returns_the_confirmed_order(stub):
    order = await stub.CreateOrder(
        order_pb2.CreateOrderRequest(user_id=ALICE, lines=[line("widget", 2)], card=CARD),
        timeout=5,
    )
    assert order.status == order_pb2.Order.STATUS_CONFIRMED
    assert order.step == order_pb2.Order.STEP_DONE
    assert (order.total.currency_code, order.total.amount_minor) == ("USD", 2500)
    assert order.lines[0].unit_price.amount_minor == 1250
    assert order.payment_id


async def test_malformed_requests_get_invalid_argument_naming_every_bad_field(stub, world):
    bad = order_pb2.CreateOrderRequest(
        user_id="",
        lines=[line("widget", 0), line("", 1), line("widget", 2)],
        card=payment_pb2.PaymentCard(number="", exp_month=13, exp_year=2040, cvc=""),
        request_id="x" * 65,
    )
    bad_fields = {
        "user_id",
        "lines[0].quantity",
        "lines[1].product_id",
        "lines",  # names "widget" twice
        "card.number",
        "card.exp_month",
        "card.cvc",
        "request_id",
    }
    with rpc_fails(grpc.StatusCode.INVALID_ARGUMENT, fields=bad_fields):
        await stub.CreateOrder(bad, timeout=5)
    listed = await stub.ListOrders(order_pb2.ListOrdersRequest(user_id=ALICE), timeout=5)
    assert list(listed.orders) == []
    assert world.faults.calls == []


async def test_a_card_the_payment_service_rejects_is_invalid_argument_and_stores_nothing(stub):
    request = order_pb2.CreateOrderRequest(
        user_id=ALICE,
        lines=[line("widget", 1)],
        card=payment_pb2.PaymentCard(number="4242x", exp_month=1, exp_year=2040, cvc="123"),
    )
    with rpc_fails(grpc.StatusCode.INVALID_ARGUMENT) as failed:
        await stub.CreateOrder(request, timeout=5)
    assert "card.number" in failed.details
    listed = await stub.ListOrders(order_pb2.ListOrdersRequest(user_id=ALICE), timeout=5)
    assert list(listed.orders) == []


async def test_unknown_orders_are_not_found(stub):
    with rpc_fails(grpc.StatusCode.NOT_FOUND):
        await stub.GetOrder(order_pb2.GetOrderRequest(order_id=id_for("nope")), timeout=5)


async def test_cancelling_a_failed_order_is_a_failed_precondition(stub):
    failed = await stub.CreateOrder(
        order_pb2.CreateOrderRequest(user_id=ALICE, lines=[line("gadget", 99)], card=CARD),
        timeout=5,
    )
    assert failed.status == order_pb2.Order.STATUS_FAILED
    with rpc_fails(grpc.StatusCode.FAILED_PRECONDITION):
        await stub.CancelOrder(order_pb2.CancelOrderRequest(order_id=failed.order_id), timeout=5)


async def test_cancel_returns_the_cancelled_order(stub, world):
    order = await stub.CreateOrder(
        order_pb2.CreateOrderRequest(user_id=ALICE, lines=[line("widget", 1)], card=CARD),
        timeout=5,
    )
    cancelled = await stub.CancelOrder(
        order_pb2.CancelOrderRequest(order_id=order.order_id), timeout=5
    )
    assert cancelled.status == order_pb2.Order.STATUS_CANCELLED
    assert cancelled.failure_reason == "cancelled by request"
    assert world.inventory.available["widget"] == 10


async def test_watch_order_ends_after_the_final_state(stub):
    order = await stub.CreateOrder(
        order_pb2.CreateOrderRequest(user_id=ALICE, lines=[line("widget", 1)], card=CARD),
        timeout=5,
    )
    updates = [
        u
        async for u in stub.WatchOrder(
            order_pb2.WatchOrderRequest(order_id=order.order_id), timeout=5
        )
    ]
    assert [u.status for u in updates] == [order_pb2.Order.STATUS_CONFIRMED]


async def test_checkout_prices_the_cart_then_streams_the_placed_order(stub):
    requests = [
        order_pb2.CheckoutRequest(set_line=order_pb2.SetCartLine(product_id="widget", quantity=2)),
        order_pb2.CheckoutRequest(set_line=order_pb2.SetCartLine(product_id="gadget", quantity=9)),
        order_pb2.CheckoutRequest(set_line=order_pb2.SetCartLine(product_id="gadget", quantity=1)),
        order_pb2.CheckoutRequest(
            place_order=order_pb2.PlaceOrder(user_id=ALICE, card=CARD, request_id="co-1")
        ),
    ]
    replies = [r async for r in stub.Checkout(iter(requests), timeout=10)]
    carts = [r.cart for r in replies if r.HasField("cart")]
    placed = [r.order for r in replies if r.HasField("order")]
    assert len(carts) == 3
    assert carts[1].all_available is False  # 9 gadgets wanted, 5 on the shelf
    assert carts[2].all_available is True
    assert carts[2].total.amount_minor == 2 * 1250 + 2400
    assert [cl.line_total.amount_minor for cl in carts[2].lines] == [2500, 2400]
    assert placed[-1].status == order_pb2.Order.STATUS_CONFIRMED
    assert placed[-1].total.amount_minor == 4900


async def test_checkout_rejects_placing_an_empty_cart(stub):
    requests = [
        order_pb2.CheckoutRequest(place_order=order_pb2.PlaceOrder(user_id=ALICE, card=CARD))
    ]
    with rpc_fails(grpc.StatusCode.INVALID_ARGUMENT) as failed:
        _ = [r async for r in stub.Checkout(iter(requests), timeout=5)]
    assert "cart is empty" in failed.details


async def test_create_order_not_final_within_the_deadline_is_deadline_exceeded(stub, world):
    world.faults.hang["charge"] = released = asyncio.Event()
    request = order_pb2.CreateOrderRequest(
        user_id=ALICE, lines=[line("widget", 1)], card=CARD, request_id="slow-1"
    )
    with rpc_fails(grpc.StatusCode.DEADLINE_EXCEEDED):
        await stub.CreateOrder(request, timeout=0.5)

    released.set()
    listed = await stub.ListOrders(order_pb2.ListOrdersRequest(user_id=ALICE), timeout=5)
    [order] = listed.orders
    updates = [
        u
        async for u in stub.WatchOrder(
            order_pb2.WatchOrderRequest(order_id=order.order_id), timeout=5
        )
    ]
    assert updates[-1].status == order_pb2.Order.STATUS_CONFIRMED


async def test_create_order_without_deadline_returns_the_order_as_it_stands(stub, world):
    world.faults.hang["charge"] = asyncio.Event()
    order = await stub.CreateOrder(
        order_pb2.CreateOrderRequest(user_id=ALICE, lines=[line("widget", 1)], card=CARD)
    )
    assert order.status == order_pb2.Order.STATUS_PENDING
    world.faults.hang["charge"].set()


async def test_a_retry_returns_the_first_order_but_a_reused_request_id_is_refused(stub, world):
    request = order_pb2.CreateOrderRequest(
        user_id=ALICE, lines=[line("widget", 1)], card=CARD, request_id="key-1"
    )
    first = await stub.CreateOrder(request, timeout=5)
    retry = await stub.CreateOrder(request, timeout=5)
    assert retry.order_id == first.order_id
    assert retry.payment_id == first.payment_id
    methods = len(world.payments.methods)

    bob = id_for("bob")
    world.users.known.add(bob)
    declining = payment_pb2.PaymentCard(
        number="4000000000000002", exp_month=12, exp_year=2040, cvc="123"
    )
    other = order_pb2.CreateOrderRequest(
        user_id=bob, lines=[line("gadget", 2)], card=declining, request_id="key-1"
    )
    for attempt in (
        stub.CreateOrder(other, timeout=5),
        _checkout_reply(stub, other),
    ):
        with rpc_fails(grpc.StatusCode.ALREADY_EXISTS, reason="REQUEST_ID_REUSED") as failed:
            await attempt
        assert first.order_id not in failed.details
        assert first.payment_id not in failed.details
    # Nothing was written for the refused requests: no card exchanged, no order for bob.
    assert len(world.payments.methods) == methods
    listed = await stub.ListOrders(order_pb2.ListOrdersRequest(user_id=bob), timeout=5)
    assert list(listed.orders) == []


async def _checkout_reply(stub, request: order_pb2.CreateOrderRequest) -> None:
    """Places `request`'s lines through Checkout and reads the replies to the end."""

    async def messages() -> AsyncIterator[order_pb2.CheckoutRequest]:
        for item in request.lines:
            yield order_pb2.CheckoutRequest(
                set_line=order_pb2.SetCartLine(product_id=item.product_id, quantity=item.quantity)
            )
        yield order_pb2.CheckoutRequest(
            place_order=order_pb2.PlaceOrder(
                user_id=request.user_id, card=request.card, request_id=request.request_id
            )
        )

    async for _ in stub.Checkout(messages(), timeout=5):
        pass


async def test_a_cart_prices_each_line_once_and_refuses_a_second_currency(stub, world):
    world.inventory.prices["croissant"] = Money("EUR", 300)
    world.inventory.available["croissant"] = 5
    lines = [("widget", 1), ("gadget", 2), ("widget", 3), ("gadget", 0)]
    call = stub.Checkout(timeout=5)
    carts = []
    for product_id, quantity in lines:  # in lock step, as clients are told to
        line = order_pb2.SetCartLine(product_id=product_id, quantity=quantity)
        await call.write(order_pb2.CheckoutRequest(set_line=line))
        carts.append((await call.read()).cart)
    euro = order_pb2.SetCartLine(product_id="croissant", quantity=1)
    await call.write(order_pb2.CheckoutRequest(set_line=euro))
    with rpc_fails(grpc.StatusCode.FAILED_PRECONDITION, reason="MIXED_CURRENCIES"):
        await call.read()
    assert [[(line.product_id, line.quantity) for line in c.lines] for c in carts] == [
        [("widget", 1)],
        [("widget", 1), ("gadget", 2)],
        [("widget", 3), ("gadget", 2)],
        [("widget", 3)],
    ]
    assert carts[-1].total.amount_minor == 3 * 1250
    # One lookup per line set; removing a line needs none.
    assert world.faults.calls.count("offer") == 4


async def test_the_same_order_asked_otherwise_is_a_retry_not_a_reuse(stub):
    lines = [line("widget", 1), line("gadget", 2)]
    first = await stub.CreateOrder(
        order_pb2.CreateOrderRequest(user_id=ALICE, lines=lines, card=CARD, request_id="key-2"),
        timeout=5,
    )
    reordered = order_pb2.CreateOrderRequest(
        user_id=ALICE, lines=lines[::-1], card=CARD, request_id="key-2"
    )
    # A field this server does not know (number 111, a string) changes nothing it does.
    with_unknown = reordered.SerializeToString() + b"\x9a\x06\x03abc"
    again = await stub.CreateOrder(reordered, timeout=5)
    assert again.order_id == first.order_id
    unknown = order_pb2.CreateOrderRequest.FromString(with_unknown)
    assert (await stub.CreateOrder(unknown, timeout=5)).order_id == first.order_id


async def test_a_plaintext_server_still_refuses_a_token_that_does_not_hold(stub):
    # SHOP_INSECURE drops the certificate checks, not the customer's: no call with a bad
    # token acts as the operator.
    with rpc_fails(grpc.StatusCode.UNAUTHENTICATED):
        await stub.ListOrders(
            order_pb2.ListOrdersRequest(user_id=ALICE),
            metadata=(("authorization", "Bearer not.a.token"),),
            timeout=5,
        )
