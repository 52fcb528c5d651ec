"""An order process killed mid-saga: after a restart every order ends final and consistent."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from shop.order.v1 import order_pb2
from shop.payment.v1 import payment_pb2

Order = order_pb2.Order
Payment = payment_pb2.Payment
FINAL = (Order.STATUS_CONFIRMED, Order.STATUS_FAILED, Order.STATUS_CANCELLED)

pytestmark = pytest.mark.local_only  # kills and restarts the order process


async def test_sigkill_mid_saga_then_restart_finishes_every_order_consistently(suite, shop):
    user = await shop.user()
    widget = await shop.product(stock=25, price_minor=700)
    attempts = [
        asyncio.ensure_future(shop.place(user, {widget: 1}, deadline_seconds=30)) for _ in range(40)
    ]
    # Kill as soon as the first orders complete: the rest are somewhere in their saga.
    await asyncio.wait(attempts, return_when=asyncio.FIRST_COMPLETED)
    suite.kill("order")
    outcomes = await asyncio.gather(*attempts, return_exceptions=True)
    interrupted = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
    assert interrupted, "the kill came too late to interrupt any order"

    suite.restart("order")
    suite.wait_ready(services=["order"])

    orders = await _all_final(shop, user)
    assert len(orders) >= len(outcomes) - len(interrupted)
    confirmed = [o for o in orders if o.status == Order.STATUS_CONFIRMED]
    stock = await shop.stock(widget)
    assert stock.reserved == 0
    assert stock.sold == sum(line.quantity for o in confirmed for line in o.lines)
    assert stock.available + stock.sold == 25
    for order in orders:
        payments = await shop.payments_of(order.order_id)
        kept = sum(
            p.amount.amount_minor - p.refunded.amount_minor
            for p in payments
            if p.status in (Payment.STATUS_SUCCEEDED, Payment.STATUS_REFUNDED)
        )
        expected = order.total.amount_minor if order.status == Order.STATUS_CONFIRMED else 0
        assert kept == expected, f"order {order.order_id} {Order.Status.Name(order.status)}"
        assert len(payments) <= 1


async def _all_final(shop, user: str, wait: float = 30.0) -> list[order_pb2.Order]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        orders = await shop.orders_of(user)
        if all(o.status in FINAL and o.step == Order.STEP_DONE for o in orders):
            return orders
        assert loop.time() < deadline, "orders left unfinished after the restart"
        await asyncio.sleep(0.2)
