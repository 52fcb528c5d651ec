"""The calls a service makes, counted by the caller (shop_grpc.metrics.client)."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from shop_grpc import deadlines
from shop_grpc.testing import MetricChanges


async def test_a_call_never_sent_because_the_budget_is_spent_is_counted_by_the_caller(shop) -> None:
    counted = MetricChanges()
    async with shop.serving() as server, shop.channel(server) as channel:
        with deadlines.budget(0.001):
            await asyncio.sleep(0.01)
            with pytest.raises(grpc.aio.AioRpcError) as spent:
                await channel.unary_unary(f"/{shop.service}/Get")(b"x")
            with pytest.raises(grpc.aio.AioRpcError):
                await anext(channel.unary_stream(f"/{shop.service}/Watch")(b"x").__aiter__())
    assert spent.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    for method, kind in (("Get", "unary"), ("Watch", "server_stream")):
        labels = shop.labels(method, kind)
        assert counted.of("grpc_client_handled_total", **labels, grpc_code="DeadlineExceeded") == 1
        assert counted.of("grpc_server_started_total", **labels) == 0  # never sent
