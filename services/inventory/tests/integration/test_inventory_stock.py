from __future__ import annotations

import asyncio

import grpc
import pytest
import structlog

from shop.inventory.v1 import inventory_pb2
from shop_grpc.testing import id_for, rpc_fails


async def _stream(*messages: tuple[str, str, int]):
    for request_id, product_id, quantity in messages:
        yield inventory_pb2.ImportStockRequest(
            request_id=request_id, product_id=product_id, quantity=quantity
        )


async def test_import_adds_every_line_and_reports_levels(inventory):
    await inventory.add_product("a")
    await inventory.add_product("b")

    response = await inventory.import_stock([("a", 5), ("b", 2), ("a", 1)], request_id="imp-1")

    assert response.lines_applied == 3
    assert [(x.product_id, x.available) for x in response.levels] == [("a", 6), ("b", 2)]
    assert await inventory.stock("a") == (6, 0, 0)


async def test_replayed_import_applies_nothing(inventory):
    await inventory.add_product("a")
    await inventory.import_stock([("a", 5)], request_id="imp-1")

    replay = await inventory.import_stock([("a", 5)], request_id="imp-1")

    assert replay.lines_applied == 0
    assert [(x.product_id, x.available) for x in replay.levels] == [("a", 5)]
    assert await inventory.stock("a") == (5, 0, 0)


async def test_an_import_key_reused_for_other_lines_is_refused(inventory):
    await inventory.add_product("a")
    await inventory.import_stock([("a", 5)], request_id="imp-1")

    with rpc_fails(grpc.StatusCode.ALREADY_EXISTS, reason="REQUEST_ID_REUSED"):
        await inventory.import_stock([("a", 50)], request_id="imp-1")

    assert await inventory.stock("a") == (5, 0, 0)


async def test_import_naming_an_unknown_product_applies_nothing(inventory):
    await inventory.add_product("a")

    with rpc_fails(grpc.StatusCode.NOT_FOUND) as failed:
        await inventory.import_stock([("a", 5), ("ghost", 1)], request_id="imp-1")

    assert "requests[1]" in failed.details
    assert "ghost" in failed.details
    assert await inventory.stock("a") == (0, 0, 0)
    # The failed attempt did not burn its request_id.
    retry = await inventory.import_stock([("a", 5)], request_id="imp-1")
    assert retry.lines_applied == 1


@pytest.mark.parametrize(
    ("messages", "field"),
    [
        ([], "requests"),
        ([("r", "a", 0)], "requests[0].quantity"),
        ([("r", "", 1)], "requests[0].product_id"),
        ([("r", "a", 1), ("other", "a", 1)], "requests[1].request_id"),
    ],
)
async def test_invalid_import_is_rejected_before_anything_applies(inventory, messages, field):
    await inventory.add_product("a")

    with rpc_fails(grpc.StatusCode.INVALID_ARGUMENT, field=field):
        await inventory.stub.ImportStock(_stream(*messages))

    assert await inventory.stock("a") == (0, 0, 0)


async def test_watch_sends_current_level_then_changes(inventory):
    await inventory.add_product("a", stock=3)
    await inventory.add_product("b")
    call = inventory.stub.WatchStock(inventory_pb2.WatchStockRequest(product_ids=["a", "b"]))
    try:
        first = [await call.read(), await call.read()]
        assert [(x.product_id, x.available) for x in first] == [("a", 3), ("b", 0)]

        await inventory.reserve(id_for("order-1"), ("a", 2))
        change = await asyncio.wait_for(call.read(), timeout=5)

        assert (change.product_id, change.available, change.reserved) == ("a", 1, 2)
    finally:
        call.cancel()


WATCH_STOCK = "/shop.inventory.v1.InventoryService/WatchStock"


@pytest.mark.parametrize(
    ("deadline_seconds", "code"),
    [(1.0, grpc.StatusCode.DEADLINE_EXCEEDED), (None, grpc.StatusCode.CANCELLED)],
)
async def test_a_watch_that_ends_early_is_logged_with_its_code(inventory, deadline_seconds, code):
    await inventory.add_product("a", stock=3)
    merged = [structlog.contextvars.merge_contextvars]
    with structlog.testing.capture_logs(processors=merged) as logs:
        call = inventory.stub.WatchStock(
            inventory_pb2.WatchStockRequest(product_ids=["a"]), timeout=deadline_seconds
        )
        assert (await call.read()).available == 3
        if deadline_seconds is None:  # the client cancels instead
            call.cancel()
        with pytest.raises((grpc.aio.AioRpcError, asyncio.CancelledError)):
            await call.read()
        async with asyncio.timeout(5):
            while not (lines := [line for line in logs if line.get("rpc") == WATCH_STOCK]):
                await asyncio.sleep(0.01)

    assert [line["code"] for line in lines] == [code.name]


async def test_watch_of_unknown_product_is_not_found(inventory):
    call = inventory.stub.WatchStock(inventory_pb2.WatchStockRequest(product_ids=["ghost"]))

    with rpc_fails(grpc.StatusCode.NOT_FOUND):
        await call.read()


async def test_watch_needs_products(inventory):
    call = inventory.stub.WatchStock(inventory_pb2.WatchStockRequest())

    with rpc_fails(grpc.StatusCode.INVALID_ARGUMENT):
        await call.read()
