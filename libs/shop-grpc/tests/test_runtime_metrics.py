"""Prometheus metrics of the calls a service serves and makes, and their /metrics endpoint."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.trace import SpanKind, format_trace_id

from shop_grpc import deadlines, metrics
from shop_grpc.channels import open_channel
from shop_grpc.config import ConfigError, Env, server_settings
from shop_grpc.errors import FieldViolation, InvalidArgument, NotFound
from shop_grpc.server import GrpcServer, Registration
from shop_grpc.testing import MetricChanges, Traced, scrape, test_settings
from shop_grpc.testing.calls import ENDINGS, SHAPES, end_early
from shop_grpc.testing.metrics import OPENMETRICS, samples

SERVICE = "test.Shop"


@pytest.fixture(autouse=True)
def recording_calls_made(monkeypatch: pytest.MonkeyPatch) -> None:
    """Channels opened in the test record their calls, as a service's do."""
    monkeypatch.setattr(metrics, "_enabled", True)


def _labels(method: str, grpc_type: str = "unary") -> dict[str, str]:
    return {"grpc_type": grpc_type, "grpc_service": SERVICE, "grpc_method": method}


async def _get(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return request


async def _refuse(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    raise InvalidArgument([FieldViolation("sku", "must not be empty")])


async def _find(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    raise NotFound("product", "ghost")


async def _count_in(requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> bytes:
    return str(len([r async for r in requests])).encode()


async def _two_out(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    yield request
    yield request


async def _echo_each(
    requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
) -> AsyncIterator[bytes]:
    async for request in requests:
        yield request


HANDLERS = {
    "Get": grpc.unary_unary_rpc_method_handler(_get),
    "Refuse": grpc.unary_unary_rpc_method_handler(_refuse),
    "Find": grpc.unary_unary_rpc_method_handler(_find),
    "Import": grpc.stream_unary_rpc_method_handler(_count_in),
    "Watch": grpc.unary_stream_rpc_method_handler(_two_out),
    "Chat": grpc.stream_stream_rpc_method_handler(_echo_each),
    "Peek": grpc.unary_unary_rpc_method_handler(_get),
    "Slow": SHAPES["unary"],
    "WatchStock": SHAPES["server-streaming"],
}


def _shop() -> Registration:
    generic = grpc.method_handlers_generic_handler(SERVICE, HANDLERS)
    return Registration(SERVICE, lambda server: server.add_generic_rpc_handlers([generic]))


@asynccontextmanager
async def _serving(metrics_address: str = "127.0.0.1:0") -> AsyncIterator[GrpcServer]:
    settings = test_settings("user", "sqlite://", metrics_address=metrics_address)
    server = GrpcServer(settings, [_shop()])
    await server.start()
    await server.set_serving(True)
    try:
        yield server
    finally:
        await server.stop(0)


@asynccontextmanager
async def _channel(server: GrpcServer) -> AsyncIterator[grpc.aio.Channel]:
    channel = open_channel(f"127.0.0.1:{server.port}")
    try:
        yield channel
    finally:
        await channel.close()


async def test_calls_are_counted_by_method_and_code_on_both_sides() -> None:
    counted = MetricChanges()
    async with _serving() as server, _channel(server) as channel:
        assert await channel.unary_unary(f"/{SERVICE}/Get")(b"x", timeout=5) == b"x"
        for method, code in (("Refuse", "INVALID_ARGUMENT"), ("Find", "NOT_FOUND")):
            with pytest.raises(grpc.aio.AioRpcError) as failed:
                await channel.unary_unary(f"/{SERVICE}/{method}")(b"x", timeout=5)
            assert failed.value.code().name == code

    for side in ("server", "client"):
        for method, code in (("Get", "OK"), ("Refuse", "InvalidArgument"), ("Find", "NotFound")):
            labels = _labels(method)
            assert counted.of(f"grpc_{side}_started_total", **labels) == 1, (side, method)
            assert counted.of(f"grpc_{side}_handled_total", **labels, grpc_code=code) == 1
            assert counted.of(f"grpc_{side}_handling_seconds_count", **labels) == 1
            assert counted.of(f"grpc_{side}_msg_received_total", **labels) == (
                1 if side == "server" or code == "OK" else 0
            )
            assert counted.of(f"grpc_{side}_msg_sent_total", **labels) == (
                1 if side == "client" or code == "OK" else 0
            )


async def test_stream_messages_are_counted_as_they_pass() -> None:
    counted = MetricChanges()
    async with _serving() as server, _channel(server) as channel:
        three = iter([b"a", b"b", b"c"])
        assert await channel.stream_unary(f"/{SERVICE}/Import")(three, timeout=5) == b"3"
        assert [m async for m in channel.unary_stream(f"/{SERVICE}/Watch")(b"x", timeout=5)] == [
            b"x",
            b"x",
        ]
        chat = channel.stream_stream(f"/{SERVICE}/Chat")(iter([b"1", b"2"]), timeout=5)
        assert [m async for m in chat] == [b"1", b"2"]
    await _until(lambda: counted.of("grpc_client_handled_total", **_chat(), grpc_code="OK"))

    def served(name: str, labels: dict[str, str]) -> float:
        return counted.of(f"grpc_server_{name}_total", **labels)

    assert (served("msg_received", _labels("Import", "client_stream")),
            served("msg_sent", _labels("Import", "client_stream"))) == (3, 1)  # fmt: skip
    assert (served("msg_received", _labels("Watch", "server_stream")),
            served("msg_sent", _labels("Watch", "server_stream"))) == (1, 2)  # fmt: skip
    assert (served("msg_received", _chat()), served("msg_sent", _chat())) == (2, 2)
    for labels in (_labels("Import", "client_stream"), _labels("Watch", "server_stream"), _chat()):
        assert counted.of("grpc_server_handled_total", **labels, grpc_code="OK") == 1
        assert counted.of("grpc_client_started_total", **labels) == 1
        assert counted.of("grpc_client_handled_total", **labels, grpc_code="OK") == 1


def _chat() -> dict[str, str]:
    return _labels("Chat", "bidi_stream")


async def _until(grown: Callable[[], float]) -> None:
    """A streaming call's end is counted on the client from its done callback: soon after."""
    async with asyncio.timeout(5):
        while not grown():
            await asyncio.sleep(0.01)


@pytest.mark.parametrize(("shape", "method"), [("unary", "Slow"), ("server_stream", "WatchStock")])
@pytest.mark.parametrize("ending", ENDINGS)
async def test_a_cancelled_or_expired_call_is_counted_with_its_code(
    shape: str, method: str, ending: str
) -> None:
    code = {"cancel": "Canceled", "deadline": "DeadlineExceeded"}[ending]
    counted = MetricChanges()
    labels = _labels(method, shape)
    async with _serving() as server, _channel(server) as channel:
        streaming = shape == "server_stream"
        multicallable = channel.unary_stream if streaming else channel.unary_unary
        timeout = 1.0 if ending == "deadline" else 30.0
        call = multicallable(f"/{SERVICE}/{method}")(b"x", timeout=timeout)
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


async def test_a_call_never_sent_because_the_budget_is_spent_is_counted_by_the_caller() -> None:
    counted = MetricChanges()
    async with _serving() as server, _channel(server) as channel:
        with deadlines.budget(0.001):
            await asyncio.sleep(0.01)
            with pytest.raises(grpc.aio.AioRpcError) as spent:
                await channel.unary_unary(f"/{SERVICE}/Get")(b"x")
            with pytest.raises(grpc.aio.AioRpcError):
                await anext(channel.unary_stream(f"/{SERVICE}/Watch")(b"x").__aiter__())
    assert spent.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    for method, kind in (("Get", "unary"), ("Watch", "server_stream")):
        labels = _labels(method, kind)
        assert counted.of("grpc_client_handled_total", **labels, grpc_code="DeadlineExceeded") == 1
        assert counted.of("grpc_server_started_total", **labels) == 0  # never sent


async def test_health_checks_and_reflection_are_not_counted() -> None:
    counted = MetricChanges()
    async with _serving() as server, _channel(server) as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    assert not [
        key
        for key in samples()
        if key[0].startswith("grpc_") and ("grpc_service", "grpc.health.v1.Health") in key[1]
    ]
    assert counted.of("grpc_client_started_total", **_labels("Check")) == 0


async def test_with_metrics_off_no_call_is_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics, "_enabled", False)
    counted = MetricChanges()
    async with _serving(metrics_address="") as server, _channel(server) as channel:
        await channel.unary_unary(f"/{SERVICE}/Get")(b"x", timeout=5)
        assert server.metrics.port == 0
    for side in ("server", "client"):
        assert counted.of(f"grpc_{side}_started_total", **_labels("Get")) == 0


async def test_the_endpoint_serves_both_formats_with_trace_exemplars(traced: Traced) -> None:
    async with _serving() as server, _channel(server) as channel:
        await channel.unary_unary(f"/{SERVICE}/Get")(b"x", timeout=5)
        text_type, text = await asyncio.to_thread(scrape, server.metrics.port)
        open_type, openmetrics = await asyncio.to_thread(scrape, server.metrics.port, OPENMETRICS)

    handled = 'grpc_server_handled_total{grpc_code="OK",grpc_method="Get"'
    assert text_type.startswith("text/plain; version=0.0.4")
    assert open_type.startswith("application/openmetrics-text")
    assert handled in text and handled in openmetrics
    assert "process_resident_memory_bytes" in text
    [span] = [s for s in traced.spans() if s.kind is SpanKind.SERVER and s.name.endswith("/Get")]
    trace_id = format_trace_id(span.context.trace_id)
    exemplar = f'# {{span_id="{span.context.span_id:016x}",trace_id="{trace_id}"}}'
    buckets = [
        line
        for line in openmetrics.splitlines()
        if line.startswith("grpc_server_handling_seconds_bucket") and 'grpc_method="Get"' in line
    ]
    assert [line for line in buckets if exemplar in line], buckets
    assert "trace_id" not in text  # the text format has no exemplars


async def test_an_untraced_call_carries_no_exemplar() -> None:
    async with _serving() as server, _channel(server) as channel:
        await channel.unary_unary(f"/{SERVICE}/Peek")(b"x", timeout=5)
        _, openmetrics = await asyncio.to_thread(scrape, server.metrics.port, OPENMETRICS)
    buckets = [
        line
        for line in openmetrics.splitlines()
        if line.startswith("grpc_server_handling_seconds_bucket") and 'grpc_method="Peek"' in line
    ]
    assert buckets
    assert not [line for line in buckets if "trace_id" in line]


def test_the_metrics_address_is_checked_and_can_be_turned_off() -> None:
    assert server_settings("order", Env({})).metrics_address == "[::]:9090"
    assert server_settings("order", Env({"SHOP_METRICS_ADDRESS": "OFF"})).metrics_address == ""
    given = {"SHOP_METRICS_ADDRESS": "127.0.0.1:9101"}
    assert server_settings("order", Env(given)).metrics_address == "127.0.0.1:9101"
    for wrong in ("9090", "localhost:http", "[::]:70000"):
        with pytest.raises(ConfigError, match="SHOP_METRICS_ADDRESS"):
            server_settings("order", Env({"SHOP_METRICS_ADDRESS": wrong}))


async def test_a_metrics_port_already_taken_fails_the_start() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"SHOP_METRICS_ADDRESS 127.0.0.1:{port}"):
            async with _serving(metrics_address=f"127.0.0.1:{port}"):
                pass
