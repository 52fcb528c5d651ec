"""CheckoutSession when the server ends the stream between two of the client's messages."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest

from shop.order.v1 import order_pb2, order_pb2_grpc
from shop_cli.checkout import CheckoutSession
from shop_grpc.testing import rpc_fails

CART = order_pb2.Cart(lines=[order_pb2.CartLine(product_id="widget", quantity=1)])


async def answer_once_then_end(requests, context) -> AsyncIterator[order_pb2.CheckoutResponse]:
    """Prices the first line, then ends the stream unprompted, as a stopping server may."""
    async for _ in requests:
        yield order_pb2.CheckoutResponse(cart=CART)
        await context.abort(grpc.StatusCode.UNAVAILABLE, "the server is stopping")


@pytest.fixture
async def stub() -> AsyncIterator[order_pb2_grpc.OrderServiceStub]:
    handler = grpc.method_handlers_generic_handler(
        "shop.order.v1.OrderService",
        {
            "Checkout": grpc.stream_stream_rpc_method_handler(
                answer_once_then_end,
                request_deserializer=order_pb2.CheckoutRequest.FromString,
                response_serializer=order_pb2.CheckoutResponse.SerializeToString,
            )
        },
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers([handler])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield order_pb2_grpc.OrderServiceStub(channel)
    finally:
        await server.stop(0)


async def test_a_write_after_the_stream_ended_raises_the_servers_status(stub):
    call = stub.Checkout(timeout=5)
    session = CheckoutSession(call)
    assert await session.set_line("widget", 1) == CART
    async with asyncio.timeout(5):
        while not call.done():
            await asyncio.sleep(0.01)
    # Writing now fails ("RPC already finished"); the session reports why it finished.
    with rpc_fails(grpc.StatusCode.UNAVAILABLE) as ended:
        await session.set_line("gadget", 1)
    assert ended.details == "the server is stopping"
