from __future__ import annotations

import asyncio

import grpc
import pytest

from shop.common.v1 import money_pb2
from shop.inventory.v1 import inventory_pb2
from shop_grpc import errors
from shop_grpc.status import from_rpc_error
from shop_grpc.testing import MetricChanges, id_for, rpc_fails

PENDING = inventory_pb2.Reservation.STATE_PENDING
COMMITTED = inventory_pb2.Reservation.STATE_COMMITTED
RELEASED = inventory_pb2.Reservation.STATE_RELEASED


def _commit(order_id):
    return inventory_pb2.CommitReservationRequest(order_id=order_id)


def _release(order_id):
    return inventory_pb2.ReleaseReservationRequest(order_id=order_id)


async def test_reserve_holds_stock_and_prices_lines(inventory):
    await inventory.add_product("a", price_minor=250, stock=10)
    await inventory.add_product("b", price_minor=1000, stock=3)

    reservation = await inventory.reserve(id_for(id_for("order-1")), ("a", 4), ("b", 3))

    assert reservation.state == PENDING
    assert [(x.product_id, x.quantity, x.unit_price.amount_minor) for x in reservation.lines] == [
        ("a", 4, 250),
        ("b", 3, 1000),
    ]
    assert (reservation.total.amount_minor, reservation.total.currency_code) == (4000, "USD")
    assert reservation.expire_time.ToDatetime() > reservation.create_time.ToDatetime()
    assert await inventory.stock("a") == (6, 4, 0)
    assert await inventory.stock("b") == (0, 3, 0)
    fetched = await inventory.stub.GetReservation(
        inventory_pb2.GetReservationRequest(order_id=id_for(id_for("order-1")))
    )
    assert fetched == reservation


async def test_commit_sells_and_is_idempotent(inventory):
    await inventory.add_product("a", stock=10)
    await inventory.reserve(id_for(id_for("order-1")), ("a", 4))

    committed = await inventory.stub.CommitReservation(_commit(id_for(id_for("order-1"))))
    again = await inventory.stub.CommitReservation(_commit(id_for(id_for("order-1"))))

    assert committed.state == again.state == COMMITTED
    assert await inventory.stock("a") == (6, 0, 4)


async def test_release_returns_held_stock_and_is_idempotent(inventory):
    await inventory.add_product("a", stock=10)
    await inventory.reserve(id_for(id_for("order-1")), ("a", 4))
    changes = MetricChanges()

    released = await inventory.stub.ReleaseReservation(_release(id_for(id_for("order-1"))))
    again = await inventory.stub.ReleaseReservation(_release(id_for(id_for("order-1"))))

    assert released.state == again.state == RELEASED
    assert await inventory.stock("a") == (10, 0, 0)
    assert changes.of("shop_inventory_reservations_total", state="RELEASED") == 1


async def test_release_after_commit_takes_sold_stock_back(inventory):
    await inventory.add_product("a", stock=10)
    await inventory.reserve(id_for(id_for("order-1")), ("a", 4))
    await inventory.stub.CommitReservation(_commit(id_for(id_for("order-1"))))

    returned = await inventory.stub.ReleaseReservation(_release(id_for(id_for("order-1"))))

    assert returned.state == RELEASED
    assert await inventory.stock("a") == (10, 0, 0)


async def test_commit_after_release_is_failed_precondition(inventory):
    await inventory.add_product("a", stock=10)
    await inventory.reserve(id_for(id_for("order-1")), ("a", 4))
    await inventory.stub.ReleaseReservation(_release(id_for(id_for("order-1"))))

    with rpc_fails(grpc.StatusCode.FAILED_PRECONDITION, reason="RESERVATION_RELEASED"):
        await inventory.stub.CommitReservation(_commit(id_for(id_for("order-1"))))

    assert await inventory.stock("a") == (10, 0, 0)


async def test_short_stock_fails_every_short_line_and_holds_nothing(inventory):
    await inventory.add_product("a", stock=1)
    await inventory.add_product("b", stock=10)
    await inventory.add_product("c", stock=0)

    with rpc_fails(grpc.StatusCode.FAILED_PRECONDITION) as failed:
        await inventory.reserve(id_for(id_for("order-1")), ("a", 3), ("b", 2), ("c", 1))

    assert isinstance(failed.error, errors.FailedPrecondition)
    assert [(v.type, v.subject, v.description) for v in failed.error.violations] == [
        ("STOCK", "a", "requested 3, available 1"),
        ("STOCK", "c", "requested 1, available 0"),
    ]
    assert await inventory.stock("a") == (1, 0, 0)
    assert await inventory.stock("b") == (10, 0, 0)
    with rpc_fails(grpc.StatusCode.NOT_FOUND):
        await inventory.stub.GetReservation(
            inventory_pb2.GetReservationRequest(order_id=id_for(id_for("order-1")))
        )


async def test_repeated_reserve_returns_the_first_reservation(inventory):
    await inventory.add_product("a", stock=10)
    first = await inventory.reserve(id_for(id_for("order-1")), ("a", 4))
    await inventory.stub.CommitReservation(_commit(id_for(id_for("order-1"))))

    again = await inventory.reserve(id_for(id_for("order-1")), ("a", 4))

    assert again.order_id == first.order_id
    assert again.state == COMMITTED
    assert await inventory.stock("a") == (6, 0, 4)


async def test_repeated_reserve_with_other_lines_is_failed_precondition(inventory):
    await inventory.add_product("a", stock=10)
    await inventory.reserve(id_for(id_for("order-1")), ("a", 4))

    with rpc_fails(grpc.StatusCode.FAILED_PRECONDITION, reason="RESERVATION_MISMATCH"):
        await inventory.reserve(id_for(id_for("order-1")), ("a", 5))

    assert await inventory.stock("a") == (6, 4, 0)


async def test_concurrent_duplicate_reserves_hold_stock_once(inventory):
    await inventory.add_product("a", stock=10)

    results = await asyncio.gather(
        *(inventory.reserve(id_for(id_for("order-1")), ("a", 2)) for _ in range(5))
    )

    assert {r.order_id for r in results} == {id_for(id_for("order-1"))}
    assert await inventory.stock("a") == (8, 2, 0)


async def test_unknown_product_is_not_found_and_holds_nothing(inventory):
    await inventory.add_product("a", stock=10)

    with rpc_fails(grpc.StatusCode.NOT_FOUND) as failed:
        await inventory.reserve(id_for(id_for("order-1")), ("a", 1), ("ghost", 1))

    assert isinstance(failed.error, errors.NotFound)
    assert failed.error.resource_name == "ghost"
    assert await inventory.stock("a") == (10, 0, 0)


async def test_products_in_different_currencies_cannot_share_a_reservation(inventory):
    await inventory.add_product("a", currency="USD", stock=10)
    await inventory.add_product("b", currency="EUR", stock=10)

    with rpc_fails(grpc.StatusCode.FAILED_PRECONDITION, reason="MIXED_CURRENCIES"):
        await inventory.reserve(id_for(id_for("order-1")), ("a", 1), ("b", 1))

    assert await inventory.stock("a") == (10, 0, 0)


async def test_invalid_reserve_names_each_bad_line(inventory):
    request = inventory_pb2.ReserveItemsRequest(
        lines=[
            money_pb2.LineItem(product_id="a", quantity=1),
            money_pb2.LineItem(product_id="a", quantity=1),
            money_pb2.LineItem(product_id="b", quantity=0),
            money_pb2.LineItem(product_id="", quantity=10_001),
        ]
    )

    bad_fields = {
        "order_id",
        "lines",  # names product "a" twice
        "lines[2].quantity",
        "lines[3].product_id",
        "lines[3].quantity",
    }
    with rpc_fails(grpc.StatusCode.INVALID_ARGUMENT, fields=bad_fields):
        await inventory.stub.ReserveItems(request)


async def test_reserve_needs_between_one_and_a_hundred_lines(inventory):
    too_many = [money_pb2.LineItem(product_id=f"p{n}", quantity=1) for n in range(101)]

    for lines in ([], too_many):
        with rpc_fails(grpc.StatusCode.INVALID_ARGUMENT) as failed:
            await inventory.stub.ReserveItems(
                inventory_pb2.ReserveItemsRequest(order_id=id_for(id_for("order-1")), lines=lines)
            )
        assert failed.fields == ["lines"]


@pytest.mark.parametrize(
    "call",
    [
        lambda stub: stub.CommitReservation(_commit(id_for("nope"))),
        lambda stub: stub.GetReservation(
            inventory_pb2.GetReservationRequest(order_id=id_for("nope"))
        ),
    ],
)
async def test_unknown_reservation_is_not_found(inventory, call):
    with rpc_fails(grpc.StatusCode.NOT_FOUND):
        await call(inventory.stub)


async def test_concurrent_reserves_never_oversell(inventory):
    await inventory.add_product("a", stock=5)

    async def attempt(n: int) -> grpc.StatusCode:
        try:
            await inventory.reserve(id_for(f"order-{n}"), ("a", 1))
        except grpc.aio.AioRpcError as exc:
            return exc.code()
        return grpc.StatusCode.OK

    outcomes = await asyncio.gather(*(attempt(n) for n in range(20)))

    assert outcomes.count(grpc.StatusCode.OK) == 5
    assert outcomes.count(grpc.StatusCode.FAILED_PRECONDITION) == 15
    assert await inventory.stock("a") == (0, 5, 0)


async def test_a_release_before_the_reserve_leaves_a_tombstone_that_refuses_it(inventory):
    # A saga replica that lost its lease: its ReserveItems lands after the new driver
    # released the order.
    await inventory.add_product("a", stock=10)

    released = await inventory.stub.ReleaseReservation(_release(id_for("order-1")))
    with rpc_fails(grpc.StatusCode.FAILED_PRECONDITION, reason="RESERVATION_CLOSED"):
        await inventory.reserve(id_for("order-1"), ("a", 3))

    assert (released.state, list(released.lines), released.HasField("total")) == (
        RELEASED,
        [],
        False,
    )
    assert await inventory.stock("a") == (10, 0, 0)
    again = await inventory.stub.ReleaseReservation(_release(id_for("order-1")))
    assert again.state == RELEASED
    with rpc_fails(grpc.StatusCode.FAILED_PRECONDITION, reason="RESERVATION_RELEASED"):
        await inventory.stub.CommitReservation(_commit(id_for("order-1")))


async def test_a_released_reservation_is_not_held_again_or_passed_off_as_held(inventory):
    await inventory.add_product("a", stock=10)
    await inventory.reserve(id_for("order-1"), ("a", 4))
    await inventory.stub.ReleaseReservation(_release(id_for("order-1")))

    with rpc_fails(grpc.StatusCode.FAILED_PRECONDITION, reason="RESERVATION_CLOSED"):
        await inventory.reserve(id_for("order-1"), ("a", 4))

    assert await inventory.stock("a") == (10, 0, 0)


async def test_racing_release_and_reserve_never_leave_stock_held(inventory):
    # Whichever lands first, the order ends with nothing held: a reserve that lost is
    # refused, one that won is released.
    await inventory.add_product("a", stock=100)

    async def race(n: int) -> None:
        order_id = id_for(f"order-{n}")
        results = await asyncio.gather(
            inventory.reserve(order_id, ("a", 2)),
            inventory.stub.ReleaseReservation(_release(order_id)),
            return_exceptions=True,
        )
        reserved = results[0]
        if isinstance(reserved, grpc.aio.AioRpcError):
            assert from_rpc_error(reserved).reason == "RESERVATION_CLOSED"
        else:
            assert reserved.state == PENDING  # it won: the release saw it and released it

    await asyncio.gather(*(race(n) for n in range(20)))

    assert await inventory.stock("a") == (100, 0, 0)
