"""A caller's deadline reaches payment through order; a timed-out order still ends consistent.

Payment's Charge is slowed by the test-only fault hook (SHOP_FAULTS), which also logs the
deadline the handler saw.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import grpc
import pytest

from shop.common.v1 import money_pb2
from shop.inventory.v1 import inventory_pb2, inventory_pb2_grpc
from shop.order.v1 import order_pb2, order_pb2_grpc
from shop.payment.v1 import payment_pb2, payment_pb2_grpc
from shop.user.v1 import user_pb2, user_pb2_grpc
from shop_cli.suite import Suite, find_free_base_port
from shop_grpc.channels import open_channel
from shop_grpc.config import PLAINTEXT, TlsSettings
from shop_grpc.testing import rpc_fails

CHARGE = "shop.payment.v1.PaymentService/Charge"
CHARGE_DELAY = 0.5
DEADLINE = 0.3
# What the client may wait beyond its deadline: grpc's timer and the loopback round trip.
CLIENT_MARGIN = 0.1
CARD = payment_pb2.PaymentCard(number="4242424242424242", exp_month=12, exp_year=2040, cvc="123")
Order = order_pb2.Order
Payment = payment_pb2.Payment

pytestmark = pytest.mark.local_only  # its own suite with injected faults


@pytest.fixture(scope="module")
def slow_payment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    suite = Suite(
        tmp_path_factory.mktemp("deadlines"),
        base_port=find_free_base_port(),
        service_env={
            "payment": {"SHOP_FAULTS": f"{CHARGE}=delay:{round(CHARGE_DELAY * 1000)}ms"},
            # The recovery loop is what finishes an order its caller gave up on.
            "order": {"SHOP_ORDER_RECOVERY_SECONDS": "0.2"},
        },
    )
    with suite:
        yield suite


def _tls(suite: Suite) -> TlsSettings:
    """The `shop` client identity when the suite made one, else plaintext."""
    directory = suite.data_dir / "certs" / "client"
    return TlsSettings(directory) if directory.is_dir() else PLAINTEXT


@pytest.fixture
async def channels(slow_payment: Suite) -> AsyncIterator[dict[str, grpc.aio.Channel]]:
    tls = _tls(slow_payment)
    opened = {
        name: open_channel(target, tls=tls, server_name=name)
        for name, target in slow_payment.endpoints().items()
    }
    yield opened
    for channel in opened.values():
        await channel.close()


async def test_deadline_reaches_payment_and_the_order_still_ends_consistent(
    slow_payment: Suite, channels: dict[str, grpc.aio.Channel]
) -> None:
    users = user_pb2_grpc.UserServiceStub(channels["user"])
    inventory = inventory_pb2_grpc.InventoryServiceStub(channels["inventory"])
    orders = order_pb2_grpc.OrderServiceStub(channels["order"])
    payments = payment_pb2_grpc.PaymentServiceStub(channels["payment"])
    user_id, product_id = await _user(users), await _product(inventory, stock=3)
    request = order_pb2.CreateOrderRequest(
        user_id=user_id,
        lines=[money_pb2.LineItem(product_id=product_id, quantity=1)],
        card=CARD,
        request_id=str(uuid.uuid4()),
    )

    client_deadline = time.time() + DEADLINE
    started = time.monotonic()
    with rpc_fails(grpc.StatusCode.DEADLINE_EXCEEDED):
        await orders.CreateOrder(request, timeout=DEADLINE)
    waited = time.monotonic() - started

    assert waited < DEADLINE + CLIENT_MARGIN
    [order] = (await orders.ListOrders(order_pb2.ListOrdersRequest(user_id=user_id))).orders
    final = await _final(orders, order.order_id)
    assert final.status == Order.STATUS_CONFIRMED
    # The first charge carried what was left of the client's deadline.
    first_charge = _charges_seen(slow_payment)[0]
    assert first_charge["deadline_unix"] <= client_deadline + 0.005
    stock = await inventory.GetStock(inventory_pb2.GetStockRequest(product_id=product_id))
    assert (stock.available, stock.reserved, stock.sold) == (2, 0, 1)
    charged = await payments.ListPayments(payment_pb2.ListPaymentsRequest(order_id=order.order_id))
    assert [(p.status, p.amount.amount_minor) for p in charged.payments] == [
        (Payment.STATUS_SUCCEEDED, final.total.amount_minor)
    ]
    # The charge made while the client waited timed out; the saga then went on with a
    # budget of its own (not the spent one) and charged again, idempotently.
    later = _charges_seen(slow_payment)[1:]
    assert later
    assert later[-1]["deadline_unix"] > client_deadline + 1


def _log(suite: Suite, service: str) -> list[dict[str, object]]:
    lines = suite.log_path(service).read_text().splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def _charges_seen(suite: Suite) -> list[dict[str, float]]:
    return [
        line  # type: ignore[misc]
        for line in _log(suite, "payment")
        if line.get("event") == "fault injected" and line.get("rpc") == f"/{CHARGE}"
    ]


async def _final(orders: order_pb2_grpc.OrderServiceStub, order_id: str) -> order_pb2.Order:
    async with asyncio.timeout(30):
        while True:
            order = await orders.GetOrder(order_pb2.GetOrderRequest(order_id=order_id))
            if order.step == Order.STEP_DONE:
                return order
            await asyncio.sleep(0.2)


async def _user(users: user_pb2_grpc.UserServiceStub) -> str:
    name = f"u{uuid.uuid4().hex[:12]}"
    user = await users.CreateUser(
        user_pb2.CreateUserRequest(
            user=user_pb2.User(username=name, email=f"{name}@example.com"),
            password="correct horse battery",
        ),
        timeout=10,
    )
    return str(user.user_id)


async def _product(inventory: inventory_pb2_grpc.InventoryServiceStub, stock: int) -> str:
    product_id = f"p-{uuid.uuid4().hex[:12]}"
    price = money_pb2.Money(currency_code="USD", amount_minor=900)
    await inventory.CreateProduct(
        inventory_pb2.CreateProductRequest(
            product=inventory_pb2.Product(product_id=product_id, title="Slow", price=price)
        ),
        timeout=10,
    )
    await inventory.ImportStock(
        iter(
            [
                inventory_pb2.ImportStockRequest(
                    request_id=str(uuid.uuid4()), product_id=product_id, quantity=stock
                )
            ]
        ),
        timeout=10,
    )
    return product_id
