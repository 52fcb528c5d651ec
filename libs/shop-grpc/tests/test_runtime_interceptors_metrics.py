"""The calls a service serves, counted as they pass (shop_grpc.interceptors.metrics): each
stream's messages, and a call cancelled or expired with its code."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from shop_grpc.testing import MetricChanges
from shop_grpc.testing.calls import ENDINGS, end_early


async def test_stream_messages_are_counted_as_they_pass(shop) -> None:
    counted = MetricChanges()
    async with shop.serving() as server, shop.channel(server) as channel:
        three = iter([b"a", b"b", b"c"])
        assert await channel.stream_unary(f"/{shop.service}/Import")(three, timeout=5) == b"3"
        watch = channel.unary_stream(f"/{shop.service}/Watch")(b"x", timeout=5)
        assert [m async for m in watch] == [b"x", b"x"]
        chat = channel.stream_stream(f"/{shop.service}/Chat")(iter([b"1", b"2"]), timeout=5)
        assert [m async for m in chat] == [b"1", b"2"]
    await _until(lambda: counted.of("grpc_client_handled_total", **_chat(shop), grpc_code="OK"))

    def served(name: str, labels: dict[str, str]) -> float:
        return counted.of(f"grpc_server_{name}_total", **labels)

    assert (served("msg_received", shop.labels("Import", "client_stream")),
            served("msg_sent", shop.labels("Import", "client_stream"))) == (3, 1)  # fmt: skip
    assert (served("msg_received", shop.labels("Watch", "server_stream")),
            served("msg_sent", shop.labels("Watch", "server_stream"))) == (1, 2)  # fmt: skip
    assert (served("msg_received", _chat(shop)), served("msg_sent", _chat(shop))) == (2, 2)
    for labels in (
        shop.labels("Import", "client_stream"),
        shop.labels("Watch", "server_stream"),
        _chat(shop),
    ):
        assert counted.of("grpc_server_handled_total", **labels, grpc_code="OK") == 1
        assert counted.of("grpc_client_started_total", **labels) == 1
        assert counted.of("grpc_client_handled_total", **labels, grpc_code="OK") == 1


def _chat(shop) -> dict[str, str]:
    return shop.labels("Chat", "bidi_stream")


async def _until(grown: Callable[[], float]) -> None:
    """A streaming call's end is counted on the client from its done callback: soon after."""
    async with asyncio.timeout(5):
        while not grown():
            await asyncio.sleep(0.01)


@pytest.mark.parametrize(("shape", "method"), [("unary", "Slow"), ("server_stream", "WatchStock")])
@pytest.mark.parametrize("ending", ENDINGS)
async def test_a_cancelled_or_expired_call_is_counted_with_its_code(
    shop, shape: str, method: str, ending: str
) -> None:
    code = {"cancel": "Canceled", "deadline": "DeadlineExceeded"}[ending]
    counted = MetricChanges()
    labels = shop.labels(method, shape)
    async with shop.serving() as server, shop.channel(server) as channel:
        streaming = shape == "server_stream"
        multicallable = channel.unary_stream if streaming else channel.unary_unary
        timeout = 1.0 if ending == "deadline" else 30.0
        call = multicallable(f"/{shop.service}/{method}")(b"x", timeout=timeout)
        await end_early(call, streaming=streaming, ending=ending)
        await _until(lambda: counted.of("grpc_server_handled_total", **labels, grpc_code=code))
        await _until(lambda: counted.of("grpc_client_handled_total", **labels, grpc_code=code))

    for side in ("server", "client"):
        assert counted.of(f"grpc_{side}_handled_total", **labels, grpc_code=code) == 1
        assert counted.of(f"grpc_{side}_handling_seconds_count", **labels) == 1
    if streaming:
        assert counted.of("grpc_server_msg_sent_total", **labels) == 1  # the one level sent
    else:
        assert counted.of("grpc_server_msg_sent_total", **labels) == 0
