"""The server span of each call (shop_grpc.interceptors.tracing): parented by its caller's,
never for probes, and ended with the status the caller got, as the call's log line says."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
import structlog
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from opentelemetry.trace import SpanKind, StatusCode, format_span_id, format_trace_id

from shop_grpc import logs
from shop_grpc.channels import open_channel
from shop_grpc.testing import Traced
from shop_grpc.testing.calls import FIRST_MESSAGE, SHAPES, end_early


async def test_a_call_chain_is_one_trace_with_logs_carrying_its_ids(
    loopback, traced: Traced
) -> None:
    log_ids: list[structlog.typing.EventDict] = []

    async def back(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        log_ids.append(logs.add_trace_ids(None, "info", {}))
        return b"back"

    assert await loopback.through_front(back) == b"back"

    spans = traced.spans()
    front_server = loopback.one_span(spans, "/test.Front/Call", SpanKind.SERVER)
    back_client = loopback.one_span(spans, "/test.Back/Call", SpanKind.CLIENT)
    back_server = loopback.one_span(spans, "/test.Back/Call", SpanKind.SERVER)
    assert front_server.parent is None
    assert loopback.parent_id(back_client) == front_server.context.span_id
    assert loopback.parent_id(back_server) == back_client.context.span_id
    assert {s.context.trace_id for s in spans} == {front_server.context.trace_id}
    assert back_server.resource.attributes["service.name"] == "shop-user"
    assert back_server.resource.attributes["service.instance.id"] == "user@127.0.0.1:1"
    assert log_ids == [
        {
            "trace_id": format_trace_id(back_server.context.trace_id),
            "span_id": format_span_id(back_server.context.span_id),
        }
    ]


async def test_health_checks_and_reflection_are_not_traced(loopback, traced: Traced) -> None:
    async with loopback.serving() as address, grpc.aio.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        reply = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        # The async server interceptor cannot wrap Watch: it must still work.
        watch = health.Watch(health_pb2.HealthCheckRequest(service=""), timeout=5)
        first = await watch.read()
        assert first.status == health_pb2.HealthCheckResponse.SERVING
        watch.cancel()
        listing = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
        )
        names = {s.name async for r in listing for s in r.list_services_response.service}
        assert "grpc.health.v1.Health" in names
    assert traced.spans() == []


async def _firehose(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    while True:
        yield FIRST_MESSAGE * 1000


def _call_lines() -> structlog.testing.LogCapture:
    """Log lines as the services write them: with the call's context and trace ids."""
    return structlog.testing.capture_logs(
        processors=[structlog.contextvars.merge_contextvars, logs.add_trace_ids]
    )


async def _logged_call(lines: list[structlog.typing.EventDict]) -> structlog.typing.EventDict:
    """The server's line for the call, once written (when its handler has ended)."""
    async with asyncio.timeout(5):
        while not (found := [line for line in lines if line["event"] == "rpc"]):
            await asyncio.sleep(0.01)
    [line] = found
    return line


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize(
    ("ending", "code"),
    [("cancel", grpc.StatusCode.CANCELLED), ("deadline", grpc.StatusCode.DEADLINE_EXCEEDED)],
)
async def test_a_cancelled_or_expired_call_is_recorded_with_its_code(
    loopback, traced: Traced, shape: str, ending: str, code: grpc.StatusCode
) -> None:
    with _call_lines() as lines:
        async with loopback.serving(loopback.service("test.Stock", SHAPES[shape])) as address:
            channel = open_channel(address)
            multicallable = (
                channel.unary_stream if shape == "server-streaming" else channel.unary_unary
            )
            timeout = 1.0 if ending == "deadline" else 30.0
            call = multicallable("/test.Stock/Call")(b"x", timeout=timeout)
            await end_early(call, streaming=shape == "server-streaming", ending=ending)
            line = await _logged_call(lines)
            await channel.close()

    spans = traced.spans()
    server = loopback.one_span(spans, "/test.Stock/Call", SpanKind.SERVER)
    client = loopback.one_span(spans, "/test.Stock/Call", SpanKind.CLIENT)
    assert (line["rpc"], line["code"]) == ("/test.Stock/Call", code.name)
    assert line["trace_id"] == format_trace_id(server.context.trace_id)
    for span in (server, client):
        assert span.attributes is not None
        assert span.attributes["rpc.grpc.status_code"] == code.value[0], span.kind
    # Semantic conventions: a cancelled call is the client's doing, not the server's error.
    server_error = code is grpc.StatusCode.DEADLINE_EXCEEDED
    assert server.status.status_code is (StatusCode.ERROR if server_error else StatusCode.UNSET)
    assert client.status.status_code is StatusCode.ERROR


async def test_a_stream_cancelled_while_it_is_sent_is_recorded_in_its_own_context(
    loopback,
    traced: Traced,
) -> None:
    firehose = grpc.unary_stream_rpc_method_handler(_firehose)
    with _call_lines() as lines:
        async with loopback.serving(loopback.service("test.Stock", firehose)) as address:
            channel = open_channel(address)
            call = channel.unary_stream("/test.Stock/Call")(b"x", timeout=30)
            for _ in range(3):
                await call.read()
            call.cancel()  # while the server is writing
            with pytest.raises(asyncio.CancelledError):
                await call.read()
            line = await _logged_call(lines)
            await channel.close()

    server = loopback.one_span(traced.spans(), "/test.Stock/Call", SpanKind.SERVER)
    client = loopback.one_span(traced.spans(), "/test.Stock/Call", SpanKind.CLIENT)
    assert (line["rpc"], line["code"]) == ("/test.Stock/Call", "CANCELLED")
    assert line["span_id"] == format_span_id(server.context.span_id)
    for span in (server, client):
        assert span.attributes is not None
        assert span.attributes["rpc.grpc.status_code"] == grpc.StatusCode.CANCELLED.value[0]
