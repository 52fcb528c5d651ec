"""The order saga across all four real services."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid

import grpc
import pytest

from shop.common.v1 import money_pb2
from shop.inventory.v1 import inventory_pb2
from shop.order.v1 import order_pb2
from shop.payment.v1 import payment_pb2
from shop_grpc.testing import rpc_fails

DECLINED = payment_pb2.PaymentCard(
    number="4000000000000002", exp_month=12, exp_year=2040, cvc="123"
)
Order = order_pb2.Order
Payment = payment_pb2.Payment


async def test_happy_path_confirms_charges_and_sells(shop):
    user = await shop.user()
    widget = await shop.product(stock=10, price_minor=1250)
    order = await shop.place(user, {widget: 2})
    assert order.status == Order.STATUS_CONFIRMED
    assert order.total == money_pb2.Money(currency_code="USD", amount_minor=2500)
    [payment] = await shop.payments_of(order.order_id)
    assert (payment.status, payment.amount.amount_minor) == (Payment.STATUS_SUCCEEDED, 2500)
    stock = await shop.stock(widget)
    assert (stock.available, stock.reserved, stock.sold) == (8, 0, 2)


async def test_out_of_stock_fails_and_leaves_stock_unchanged(shop):
    user = await shop.user()
    widget = await shop.product(stock=1)
    order = await shop.place(user, {widget: 2})
    assert order.status == Order.STATUS_FAILED
    assert "out of stock" in order.failure_reason
    stock = await shop.stock(widget)
    assert (stock.available, stock.reserved, stock.sold) == (1, 0, 0)
    assert await shop.payments_of(order.order_id) == []


async def test_a_declined_card_fails_the_order_and_releases_the_reservation(shop):
    user = await shop.user()
    widget = await shop.product(stock=3)
    order = await shop.place(user, {widget: 2}, card=DECLINED)
    assert order.status == Order.STATUS_FAILED
    assert "declined" in order.failure_reason
    reservation = await shop.inventory.GetReservation(
        inventory_pb2.GetReservationRequest(order_id=order.order_id), timeout=10
    )
    assert reservation.state == inventory_pb2.Reservation.STATE_RELEASED
    stock = await shop.stock(widget)
    assert (stock.available, stock.reserved) == (3, 0)
    [payment] = await shop.payments_of(order.order_id)
    assert payment.status == Payment.STATUS_DECLINED


async def test_a_retried_create_order_makes_one_order_and_one_charge(shop):
    user = await shop.user()
    widget = await shop.product(stock=5)
    request_id = str(uuid.uuid4())
    first, *retries = await asyncio.gather(
        *(shop.place(user, {widget: 1}, request_id=request_id) for _ in range(4))
    )
    again = await shop.place(user, {widget: 1}, request_id=request_id)
    assert {o.order_id for o in [*retries, again]} == {first.order_id}
    assert again.status == Order.STATUS_CONFIRMED
    assert len(await shop.orders_of(user)) == 1
    assert len(await shop.payments_of(first.order_id)) == 1
    assert (await shop.stock(widget)).sold == 1


async def test_twenty_concurrent_orders_for_five_units_confirm_exactly_five(shop):
    user = await shop.user()
    widget = await shop.product(stock=5)
    placed = await asyncio.gather(*(shop.place(user, {widget: 1}) for _ in range(20)))
    statuses = [o.status for o in placed]
    assert statuses.count(Order.STATUS_CONFIRMED) == 5
    assert statuses.count(Order.STATUS_FAILED) == 15
    stock = await shop.stock(widget)
    assert (stock.available, stock.reserved, stock.sold) == (0, 0, 5)
    for order in placed:
        charged = [
            p
            for p in await shop.payments_of(order.order_id)
            if p.status == Payment.STATUS_SUCCEEDED
        ]
        assert len(charged) == (1 if order.status == Order.STATUS_CONFIRMED else 0)


async def test_cancel_refunds_and_puts_the_stock_back(shop):
    user = await shop.user()
    widget = await shop.product(stock=4, price_minor=999)
    order = await shop.place(user, {widget: 3})
    assert order.status == Order.STATUS_CONFIRMED
    cancelled = await shop.orders.CancelOrder(
        order_pb2.CancelOrderRequest(order_id=order.order_id), timeout=20
    )
    assert cancelled.status == Order.STATUS_CANCELLED
    [payment] = await shop.payments_of(order.order_id)
    assert payment.status == Payment.STATUS_REFUNDED
    assert payment.refunded.amount_minor == 2997
    stock = await shop.stock(widget)
    assert (stock.available, stock.reserved, stock.sold) == (4, 0, 0)


async def test_watch_follows_an_order_to_its_final_state(shop):
    user = await shop.user()
    widget = await shop.product(stock=2)
    order = await shop.place(user, {widget: 1})
    updates = [
        u
        async for u in shop.orders.WatchOrder(
            order_pb2.WatchOrderRequest(order_id=order.order_id), timeout=10
        )
    ]
    assert updates[-1].status == Order.STATUS_CONFIRMED
    assert updates[-1].step == Order.STEP_DONE


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda r: r.ClearField("lines"), "lines"),
        (lambda r: setattr(r.lines[0], "quantity", -1), "lines[0].quantity"),
        (lambda r: setattr(r, "user_id", ""), "user_id"),
        (lambda r: setattr(r.card, "number", "4242424242424241"), "card.number"),
        (lambda r: setattr(r.card, "exp_month", 13), "card.exp_month"),
        # Ids the user service would refuse are refused here, before anything is stored.
        (lambda r: setattr(r, "user_id", "bob"), "user_id"),
        (lambda r: setattr(r, "user_id", r.user_id.upper()), "user_id"),
        (lambda r: setattr(r, "user_id", " "), "user_id"),
        (lambda r: setattr(r, "user_id", "é"), "user_id"),
        # Unicode digits are not digits to a card network.
        (lambda r: setattr(r.card, "number", "4242424242424²42"), "card.number"),
        (lambda r: setattr(r.card, "cvc", "\uff11\uff12\uff13"), "card.cvc"),
        # Strings that would reach SQL: too long for the column, or holding NUL.
        (lambda r: setattr(r.lines[0], "product_id", "p" * 65), "lines[0].product_id"),
        (lambda r: setattr(r.lines[0], "product_id", "a\x00b"), "lines[0].product_id"),
        (lambda r: setattr(r, "request_id", "r\x00"), "request_id"),
    ],
)
async def test_malformed_requests_are_invalid_argument_and_write_nothing(shop, mutate, field):
    user = await shop.user()
    widget = await shop.product(stock=2)
    request = order_pb2.CreateOrderRequest(
        user_id=user,
        lines=[money_pb2.LineItem(product_id=widget, quantity=1)],
        card=payment_pb2.PaymentCard(
            number="4242424242424242", exp_month=12, exp_year=2040, cvc="123"
        ),
    )
    mutate(request)
    with rpc_fails(grpc.StatusCode.INVALID_ARGUMENT, field=field):
        await shop.orders.CreateOrder(request, timeout=10)
    assert await shop.orders_of(user) == []
    stock = await shop.stock(widget)
    assert (stock.available, stock.reserved) == (2, 0)


@pytest.mark.local_only  # reads the local suite's payment database
async def test_a_refused_order_leaves_no_payment_method_behind(shop, data_dir):
    user = await shop.user()
    before = _payment_methods(data_dir)
    for product_id in ("p" * 65, "a\x00b", "Widget"):
        request = order_pb2.CreateOrderRequest(
            user_id=user,
            lines=[money_pb2.LineItem(product_id=product_id, quantity=1)],
            card=payment_pb2.PaymentCard(
                number="4242424242424242", exp_month=12, exp_year=2040, cvc="123"
            ),
        )
        with rpc_fails(grpc.StatusCode.INVALID_ARGUMENT):
            await shop.orders.CreateOrder(request, timeout=10)
    assert _payment_methods(data_dir) == before
    assert await shop.orders_of(user) == []


def _payment_methods(data_dir) -> int:
    with sqlite3.connect(data_dir / "payment.db") as db:
        return int(db.execute("SELECT count(*) FROM payment_methods").fetchone()[0])


async def test_a_request_id_reused_by_another_caller_never_returns_the_first_order(shop):
    alice, mallory = await shop.user(), await shop.user()
    widget, gadget = await shop.product(stock=5), await shop.product(stock=5)
    request_id = str(uuid.uuid4())
    first = await shop.place(alice, {widget: 1}, request_id=request_id)
    assert first.status == Order.STATUS_CONFIRMED

    with rpc_fails(grpc.StatusCode.ALREADY_EXISTS, reason="REQUEST_ID_REUSED") as failed:
        await shop.place(mallory, {gadget: 2}, card=DECLINED, request_id=request_id)

    assert first.order_id not in failed.details
    assert first.payment_id not in failed.details
    assert await shop.orders_of(mallory) == []
    assert (await shop.stock(gadget)).available == 5
    # The first caller's retry still gets its order.
    assert (await shop.place(alice, {widget: 1}, request_id=request_id)).order_id == first.order_id
