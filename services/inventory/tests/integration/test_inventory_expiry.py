from __future__ import annotations

import asyncio
from datetime import timedelta

import grpc
import pytest

from shop.inventory.v1 import inventory_pb2
from shop_grpc.testing import MetricChanges, id_for, rpc_fails
from shop_inventory.entrypoints.sweeper import expiry_sweeper

EXPIRED = inventory_pb2.Reservation.STATE_EXPIRED
TTL = 0.3


@pytest.fixture
def reservation_ttl() -> timedelta:
    return timedelta(seconds=TTL)


def _entered(changes: MetricChanges, state: str) -> float:
    return changes.of("shop_inventory_reservations_total", state=state)


async def test_commit_after_expiry_returns_stock_and_fails(inventory):
    changes = MetricChanges()
    await inventory.add_product("a", stock=5)
    await inventory.reserve(id_for(id_for("order-1")), ("a", 2))
    await asyncio.sleep(TTL + 0.1)

    with rpc_fails(grpc.StatusCode.FAILED_PRECONDITION, reason="RESERVATION_EXPIRED"):
        await inventory.stub.CommitReservation(
            inventory_pb2.CommitReservationRequest(order_id=id_for(id_for("order-1")))
        )

    assert await inventory.stock("a") == (5, 0, 0)
    reservation = await inventory.stub.GetReservation(
        inventory_pb2.GetReservationRequest(order_id=id_for(id_for("order-1")))
    )
    assert reservation.state == EXPIRED
    assert (_entered(changes, "PENDING"), _entered(changes, "EXPIRED")) == (1, 1)
    assert _entered(changes, "COMMITTED") == 0


async def test_sweeper_expires_overdue_reservations(inventory):
    changes = MetricChanges()
    await inventory.add_product("a", stock=5)
    await inventory.reserve(id_for(id_for("order-1")), ("a", 2))
    await inventory.reserve(id_for(id_for("order-2")), ("a", 1))
    await inventory.stub.CommitReservation(
        inventory_pb2.CommitReservationRequest(order_id=id_for(id_for("order-2")))
    )
    watch = inventory.stub.WatchStock(inventory_pb2.WatchStockRequest(product_ids=["a"]))
    sweeper = asyncio.create_task(expiry_sweeper(inventory.uow, 0.05)())
    try:
        async with asyncio.timeout(5):
            async for level in watch:
                if (level.available, level.reserved, level.sold) == (4, 0, 1):
                    break
    finally:
        watch.cancel()
        sweeper.cancel()

    expired = await inventory.stub.GetReservation(
        inventory_pb2.GetReservationRequest(order_id=id_for(id_for("order-1")))
    )
    sold = await inventory.stub.GetReservation(
        inventory_pb2.GetReservationRequest(order_id=id_for(id_for("order-2")))
    )
    assert expired.state == EXPIRED
    assert sold.state == inventory_pb2.Reservation.STATE_COMMITTED
    released = await inventory.stub.ReleaseReservation(
        inventory_pb2.ReleaseReservationRequest(order_id=id_for(id_for("order-1")))
    )
    assert released.state == EXPIRED
    assert await inventory.stock("a") == (4, 0, 1)
    counted = {state: _entered(changes, state) for state in ("PENDING", "COMMITTED", "EXPIRED")}
    assert counted == {"PENDING": 2, "COMMITTED": 1, "EXPIRED": 1}
    assert _entered(changes, "RELEASED") == 0  # releasing the expired one changed nothing


async def test_an_expired_reservation_is_not_held_again(inventory):
    await inventory.add_product("a", stock=5)
    await inventory.reserve(id_for("order-1"), ("a", 2))
    await asyncio.sleep(TTL + 0.1)
    await inventory.stub.ReleaseReservation(
        inventory_pb2.ReleaseReservationRequest(order_id=id_for("order-1"))
    )

    with rpc_fails(grpc.StatusCode.FAILED_PRECONDITION, reason="RESERVATION_CLOSED"):
        await inventory.reserve(id_for("order-1"), ("a", 2))

    assert await inventory.stock("a") == (5, 0, 0)
