"""Requests checked against their .proto's rules before the handler
(shop_grpc.interceptors.validation): a bad one is INVALID_ARGUMENT naming its fields, an
unparsable one names the request, and neither reaches the handler."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from shop.common.v1 import money_pb2
from shop.order.v1 import order_pb2
from shop_grpc.server import Registration
from shop_grpc.testing import rpc_fails, serving, test_settings

ORDERS = "test.Orders"
BAD = order_pb2.CreateOrderRequest(
    user_id="Alice", lines=[money_pb2.LineItem(product_id="widget", quantity=0)]
)


class Orders:
    def __init__(self) -> None:
        self.handled = 0

    async def create(self, request: object, context: grpc.aio.ServicerContext) -> bytes:
        self.handled += 1
        return b""

    async def create_many(
        self, requests: AsyncIterator[object], context: grpc.aio.ServicerContext
    ) -> bytes:
        async for _ in requests:
            self.handled += 1
        return b""

    def registration(self) -> Registration:
        parse = order_pb2.CreateOrderRequest.FromString
        handlers = {
            "Create": grpc.unary_unary_rpc_method_handler(self.create, request_deserializer=parse),
            "CreateMany": grpc.stream_unary_rpc_method_handler(
                self.create_many, request_deserializer=parse
            ),
        }
        generic = grpc.method_handlers_generic_handler(ORDERS, handlers)
        return Registration(ORDERS, lambda server: server.add_generic_rpc_handlers([generic]))


@pytest.fixture
async def orders() -> AsyncIterator[tuple[Orders, grpc.aio.Channel]]:
    served = Orders()
    async with serving(test_settings("order", "sqlite://"), [served.registration()]) as channel:
        yield served, channel


async def test_a_bad_request_names_its_fields_and_never_reaches_the_handler(orders) -> None:
    served, channel = orders
    with rpc_fails(
        grpc.StatusCode.INVALID_ARGUMENT, fields={"user_id", "lines[0].quantity", "card"}
    ):
        await channel.unary_unary(f"/{ORDERS}/Create")(BAD.SerializeToString(), timeout=5)
    assert served.handled == 0


async def test_a_request_that_does_not_parse_is_invalid_on_request(orders) -> None:
    served, channel = orders
    with rpc_fails(grpc.StatusCode.INVALID_ARGUMENT, fields={"request"}):
        await channel.unary_unary(f"/{ORDERS}/Create")(b"\x0a\xff", timeout=5)
    assert served.handled == 0


async def test_a_client_stream_is_refused_naming_each_message_by_its_place(orders) -> None:
    served, channel = orders
    empty = order_pb2.CreateOrderRequest().SerializeToString()
    with rpc_fails(grpc.StatusCode.INVALID_ARGUMENT) as refused:
        await channel.stream_unary(f"/{ORDERS}/CreateMany")(
            iter([empty, BAD.SerializeToString()]), timeout=5
        )
    assert {"requests[0].user_id", "requests[1].lines[0].quantity"} <= set(refused.fields)
    assert all(field.startswith(("requests[0].", "requests[1].")) for field in refused.fields)
    assert served.handled == 0
