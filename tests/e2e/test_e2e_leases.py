"""Two order replicas on one database: a replica that stalls while its ReserveItems is held
loses the order to the other, and its reserve, landing after the other released the order,
holds nothing.

ReserveItems is held by the test-only fault hook (SHOP_FAULTS). Replica A is the suite's own
order process; replica B is a second order process on 127.0.0.2 with the same data directory,
so the same database.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from shop.inventory.v1 import inventory_pb2
from shop.order.v1 import order_pb2, order_pb2_grpc
from shop_cli.suite import Suite, find_free_base_port
from shop_grpc.channels import open_channel
from shop_grpc.config import TlsSettings

RESERVE = "shop.inventory.v1.InventoryService/ReserveItems"
RESERVE_HELD = 3.0
LEASE = 1.5
ORDER_ENV = {
    "SHOP_ORDER_LEASE_SECONDS": str(LEASE),
    # Only the start-up scan: replica B takes the order over because a cancel asks it to.
    "SHOP_ORDER_RECOVERY_SECONDS": "600",
}
Order = order_pb2.Order
Reservation = inventory_pb2.Reservation

pytestmark = pytest.mark.local_only  # its own processes, one of them paused


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    """The suite the `shop` fixture talks to: replica A and the services it calls."""
    suite = Suite(
        tmp_path_factory.mktemp("leases"),
        base_port=find_free_base_port(),
        service_env={
            "inventory": {"SHOP_FAULTS": f"{RESERVE}=delay:{RESERVE_HELD:g}s"},
            "order": ORDER_ENV,
        },
    )
    with suite:
        yield suite


@pytest.fixture(scope="module")
def replica_b(suite: Suite) -> Iterator[Suite]:
    other = Suite(
        suite.data_dir,
        host="127.0.0.2",
        base_port=suite.base_port,
        extra_env={
            f"SHOP_{service.upper()}_TARGET": target
            for service, target in suite.endpoints().items()
            if service != "order"
        },
        service_env={"order": ORDER_ENV},
        log_dir=suite.data_dir / "logs" / "replica-b",
    )
    other.restart("order")  # starts only the order service
    try:
        other.wait_ready(services=["order"])
        yield other
    finally:
        other.stop()


async def test_a_stalled_replicas_late_reserve_holds_nothing(suite, replica_b, shop):
    user = await shop.user()
    widget = await shop.product(stock=5)
    tls = TlsSettings(suite.certs_dir / "client")
    async with open_channel(replica_b.endpoints()["order"], tls=tls, server_name="order") as b:
        on_b = order_pb2_grpc.OrderServiceStub(b)
        placing = asyncio.ensure_future(shop.place(user, {widget: 3}, deadline_seconds=15))
        await _reserve_held(suite)
        suite.pause("order")  # A stalls while its ReserveItems waits in the inventory
        try:
            listed = await on_b.ListOrders(order_pb2.ListOrdersRequest(user_id=user), timeout=5)
            [order] = listed.orders
            await asyncio.sleep(LEASE + 0.3)  # A's lease lapses
            cancelled = await on_b.CancelOrder(
                order_pb2.CancelOrderRequest(order_id=order.order_id), timeout=10
            )
            await asyncio.sleep(RESERVE_HELD)  # A's reserve reaches the inventory's handler
            reservation = await shop.inventory.GetReservation(
                inventory_pb2.GetReservationRequest(order_id=order.order_id), timeout=5
            )
            stock_while_a_stalls = await shop.stock(widget)
        finally:
            suite.resume("order")
    await asyncio.gather(placing, return_exceptions=True)  # A answers once awake
    await _until_logged(suite, "lease lost; another replica drives the order")

    assert (cancelled.status, cancelled.step) == (Order.STATUS_CANCELLED, Order.STEP_DONE)
    assert (reservation.state, list(reservation.lines)) == (Reservation.STATE_RELEASED, [])
    assert (stock_while_a_stalls.available, stock_while_a_stalls.reserved) == (5, 0)
    # A, awake again, found its lease gone and changed nothing.
    [after] = await shop.orders_of(user)
    assert after.status == Order.STATUS_CANCELLED
    stock = await shop.stock(widget)
    assert (stock.available, stock.reserved, stock.sold) == (5, 0, 0)


def _events(log: Path) -> list[dict[str, object]]:
    lines = log.read_text().splitlines() if log.exists() else []
    return [json.loads(line) for line in lines if line.startswith("{")]


async def _reserve_held(suite: Suite) -> None:
    """Until the inventory holds a ReserveItems (the fault hook logs it as it starts)."""
    async with asyncio.timeout(10):
        while not any(
            e.get("event") == "fault injected" and e.get("rpc") == f"/{RESERVE}"
            for e in _events(suite.log_path("inventory"))
        ):
            await asyncio.sleep(0.02)


async def _until_logged(suite: Suite, event: str) -> None:
    async with asyncio.timeout(10):
        while not any(e.get("event") == event for e in _events(suite.log_path("order"))):
            await asyncio.sleep(0.1)
