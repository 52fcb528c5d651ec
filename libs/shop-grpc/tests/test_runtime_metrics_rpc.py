"""The go-grpc-prometheus families of calls served and made (shop_grpc.metrics.rpc): by
method, and by the status code as grpc-go spells it."""

from __future__ import annotations

import grpc
import pytest

from shop_grpc.testing import MetricChanges


async def test_calls_are_counted_by_method_and_code_on_both_sides(shop) -> None:
    counted = MetricChanges()
    async with shop.serving() as server, shop.channel(server) as channel:
        assert await channel.unary_unary(f"/{shop.service}/Get")(b"x", timeout=5) == b"x"
        for method, code in (("Refuse", "INVALID_ARGUMENT"), ("Find", "NOT_FOUND")):
            with pytest.raises(grpc.aio.AioRpcError) as failed:
                await channel.unary_unary(f"/{shop.service}/{method}")(b"x", timeout=5)
            assert failed.value.code().name == code

    for side in ("server", "client"):
        for method, code in (("Get", "OK"), ("Refuse", "InvalidArgument"), ("Find", "NotFound")):
            labels = shop.labels(method)
            assert counted.of(f"grpc_{side}_started_total", **labels) == 1, (side, method)
            assert counted.of(f"grpc_{side}_handled_total", **labels, grpc_code=code) == 1
            assert counted.of(f"grpc_{side}_handling_seconds_count", **labels) == 1
            assert counted.of(f"grpc_{side}_msg_received_total", **labels) == (
                1 if side == "server" or code == "OK" else 0
            )
            assert counted.of(f"grpc_{side}_msg_sent_total", **labels) == (
                1 if side == "client" or code == "OK" else 0
            )
