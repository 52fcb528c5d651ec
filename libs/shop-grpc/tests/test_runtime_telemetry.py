"""Tracing: what is traced, how spans are parented and sampled, and what never leaves."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager

import grpc
import pytest
import structlog
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode, format_span_id, format_trace_id
from sqlalchemy import text

from shop_grpc import logs, telemetry
from shop_grpc.channels import open_channel
from shop_grpc.config import ConfigError, Env, tracing_settings
from shop_grpc.errors import AlreadyExists
from shop_grpc.server import GrpcServer, Registration
from shop_grpc.storage import Database
from shop_grpc.testing import Traced, rpc_fails, test_settings
from shop_grpc.testing.calls import FIRST_MESSAGE, SHAPES, end_early

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
SECRET_EMAIL = "someone@example.com"


def _service(name: str, handler: grpc.RpcMethodHandler) -> Registration:
    generic = grpc.method_handlers_generic_handler(name, {"Call": handler})
    return Registration(name, lambda server: server.add_generic_rpc_handlers([generic]))


@asynccontextmanager
async def _serving(*services: Registration) -> AsyncIterator[str]:
    server = GrpcServer(test_settings("user", "sqlite://"), list(services))
    port = await server.start()
    await server.set_serving(True)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(0)


def _call(channel: grpc.aio.Channel, service: str) -> grpc.aio.UnaryUnaryMultiCallable:
    return channel.unary_unary(f"/{service}/Call")  # bytes in, bytes out


def _unary(behavior: object) -> grpc.RpcMethodHandler:
    return grpc.unary_unary_rpc_method_handler(behavior)


async def test_a_call_chain_is_one_trace_with_logs_carrying_its_ids(traced: Traced) -> None:
    log_ids: list[structlog.typing.EventDict] = []

    async def back(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        log_ids.append(logs.add_trace_ids(None, "info", {}))
        return b"back"

    assert await _through_front(back) == b"back"

    spans = traced.spans()
    front_server = _one(spans, "/test.Front/Call", SpanKind.SERVER)
    back_client = _one(spans, "/test.Back/Call", SpanKind.CLIENT)
    back_server = _one(spans, "/test.Back/Call", SpanKind.SERVER)
    assert front_server.parent is None
    assert _parent_id(back_client) == front_server.context.span_id
    assert _parent_id(back_server) == back_client.context.span_id
    assert {s.context.trace_id for s in spans} == {front_server.context.trace_id}
    assert back_server.resource.attributes["service.name"] == "shop-user"
    assert back_server.resource.attributes["service.instance.id"] == "user@127.0.0.1:1"
    assert log_ids == [
        {
            "trace_id": format_trace_id(back_server.context.trace_id),
            "span_id": format_span_id(back_server.context.span_id),
        }
    ]


async def _through_front(
    back: Callable[[bytes, grpc.aio.ServicerContext], Awaitable[bytes]],
    metadata: tuple[tuple[str, str], ...] = (),
) -> bytes:
    """The answer to a call of test.Front (with `metadata`), whose handler calls test.Back,
    served by `back`, over a channel of the runtime's."""
    async with _serving(_service("test.Back", _unary(back))) as back_address:
        channel = open_channel(back_address, default_timeout=5)

        async def front(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            return bytes(await _call(channel, "test.Back")(b"x"))

        try:
            async with (
                _serving(_service("test.Front", _unary(front))) as front_address,
                grpc.aio.insecure_channel(front_address) as caller,
            ):
                return bytes(await _call(caller, "test.Front")(b"x", timeout=5, metadata=metadata))
        finally:
            await channel.close()


def _one(spans: list[ReadableSpan], name: str, kind: SpanKind) -> ReadableSpan:
    matching = [s for s in spans if s.name == name and s.kind is kind]
    assert len(matching) == 1, [(s.name, s.kind) for s in spans]
    return matching[0]


def _parent_id(span: ReadableSpan) -> int | None:
    return None if span.parent is None else span.parent.span_id


async def test_health_checks_and_reflection_are_not_traced(traced: Traced) -> None:
    async with _serving() as address, grpc.aio.insecure_channel(address) as channel:
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


async def _served_spans(traced: Traced, metadata: tuple[tuple[str, str], ...] = ()) -> list[str]:
    async def echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return request

    async with (
        _serving(_service("test.Echo", _unary(echo))) as address,
        grpc.aio.insecure_channel(address) as channel,
    ):
        await _call(channel, "test.Echo")(b"x", timeout=5, metadata=metadata)
    return [s.name for s in traced.spans()]


def _traceparent(sampled: bool) -> tuple[tuple[str, str], ...]:
    return (("traceparent", f"00-{TRACE_ID}-{PARENT_ID}-{'01' if sampled else '00'}"),)


@contextmanager
def _sampling_at(monkeypatch: pytest.MonkeyPatch, ratio: str) -> Iterator[Traced]:
    """Tracing on for the block, parent-based at `ratio`; spans kept in the Traced yielded."""
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", ratio)
    sink = Traced(test_settings("user", "sqlite://"))
    telemetry.use(sink.provider)
    try:
        yield sink
    finally:
        telemetry.use(None)
        sink.provider.shutdown()


async def test_ratio_zero_samples_nothing_but_a_sampled_parent_wins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with _sampling_at(monkeypatch, "0") as sink:
        assert await _served_spans(sink) == []
        assert await _served_spans(sink, _traceparent(sampled=True)) == ["/test.Echo/Call"]
    (span,) = sink.spans()
    assert format_trace_id(span.context.trace_id) == TRACE_ID
    assert span.parent is not None and format_span_id(span.parent.span_id) == PARENT_ID


async def test_an_unsampled_parent_is_followed_even_at_ratio_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with _sampling_at(monkeypatch, "1") as sink:
        assert await _served_spans(sink, _traceparent(sampled=False)) == []
        assert await _served_spans(sink) == ["/test.Echo/Call"]


async def test_under_an_unsampled_parent_calls_pass_the_decision_on_and_record_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    received: list[str] = []

    async def back(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        received.append(dict(context.invocation_metadata())["traceparent"])
        return b"back"

    with _sampling_at(monkeypatch, "1") as sink:
        reply = await _through_front(back, _traceparent(sampled=False))
    assert reply == b"back"
    assert sink.spans() == []
    [traceparent] = received
    _, trace_id, _, flags = traceparent.split("-")
    assert (trace_id, flags) == (TRACE_ID, "00")


async def test_error_messages_never_leave_in_spans(traced: Traced) -> None:
    async def clash(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        raise AlreadyExists("user", SECRET_EMAIL, f"email {SECRET_EMAIL!r} is already used")

    async with _serving(_service("test.Clash", _unary(clash))) as address:
        channel = open_channel(address, default_timeout=5)
        with rpc_fails(grpc.StatusCode.ALREADY_EXISTS) as caught:
            await _call(channel, "test.Clash")(b"x")
        await channel.close()
    assert SECRET_EMAIL in caught.details, "the caller still gets the message"
    spans = traced.spans()
    client = _one(spans, "/test.Clash/Call", SpanKind.CLIENT)
    server = _one(spans, "/test.Clash/Call", SpanKind.SERVER)
    assert client.status.status_code is StatusCode.ERROR
    for span in (client, server):
        assert span.attributes is not None
        assert span.attributes["rpc.grpc.status_code"] == grpc.StatusCode.ALREADY_EXISTS.value[0]
        assert SECRET_EMAIL not in _everything(span)


def _everything(span: ReadableSpan) -> str:
    """Every string a span carries, to search for what must not be there."""
    parts = [span.name, str(span.status.description), str(dict(span.attributes or {}))]
    parts += [f"{e.name} {dict(e.attributes or {})}" for e in span.events]
    return " ".join(parts)


async def test_sql_spans_show_statements_not_values_and_only_inside_traced_work(
    traced: Traced, database_url: str
) -> None:
    db = Database(database_url)
    try:
        async with db.session() as session:
            await session.execute(text("CREATE TABLE people (email TEXT)"))
            await session.commit()
        with telemetry.span("work", {"shop.items": 2}):
            async with db.session() as session:
                await session.execute(
                    text("INSERT INTO people (email) VALUES (:email)"), {"email": SECRET_EMAIL}
                )
                await session.commit()
    finally:
        await db.dispose()
    spans = traced.spans()
    work = _one(spans, "work", SpanKind.INTERNAL)
    statements = [s for s in spans if s.kind is SpanKind.CLIENT]
    assert statements, "no SQL spans under the traced work"
    assert all(_parent_id(s) == work.context.span_id for s in statements)
    [insert] = [s for s in statements if s.name.startswith("INSERT ")]
    assert insert.attributes is not None
    assert insert.attributes["db.statement"] in {
        "INSERT INTO people (email) VALUES (?)",  # SQLite
        "INSERT INTO people (email) VALUES ($1)",  # PostgreSQL (asyncpg)
    }
    assert all(SECRET_EMAIL not in _everything(s) for s in spans)
    assert not any("CREATE" in s.name for s in spans), "untraced work made spans"


def test_tracing_is_on_only_with_an_exporter_and_off_installs_nothing() -> None:
    assert tracing_settings(Env({})).exporter == "none"
    endpoint = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"}
    assert tracing_settings(Env(endpoint)).exporter == "otlp"
    assert tracing_settings(Env({**endpoint, "OTEL_SDK_DISABLED": "true"})).exporter == "none"
    assert tracing_settings(Env({"OTEL_TRACES_EXPORTER": "console"})).exporter == "console"
    with pytest.raises(ConfigError, match="OTEL_TRACES_EXPORTER"):
        tracing_settings(Env({"OTEL_TRACES_EXPORTER": "zipkin"}))

    telemetry.configure(test_settings("user", "sqlite://"))
    assert not telemetry.enabled()
    assert telemetry.server_interceptors() == []
    assert telemetry.client_interceptors() == []
    with telemetry.span("anything") as span:
        assert not span.is_recording()


def test_a_graceful_stop_exports_what_is_still_buffered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "600000")  # nothing leaves on its own
    sink = Traced(test_settings("order", "sqlite://"))
    telemetry.use(sink.provider)
    with telemetry.span("saga CHARGING_PAYMENT", {"shop.order.id": "o-1"}):
        pass
    assert sink.exporter.get_finished_spans() == ()
    telemetry.shutdown()
    assert [s.name for s in sink.exporter.get_finished_spans()] == ["saga CHARGING_PAYMENT"]
    assert not telemetry.enabled()


async def test_with_tracing_on_cancelling_a_call_still_cancels_the_calls_it_made(
    traced: Traced,
) -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def back(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return b""

    async with _serving(_service("test.Back", _unary(back))) as back_address:
        channel = open_channel(back_address)

        async def front(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            return bytes(await _call(channel, "test.Back")(b"x"))

        async with (
            _serving(_service("test.Front", _unary(front))) as front_address,
            grpc.aio.insecure_channel(front_address) as caller,
        ):
            call = _call(caller, "test.Front")(b"x", timeout=30)
            await asyncio.wait_for(started.wait(), 5)
            call.cancel()
            await asyncio.wait_for(cancelled.wait(), 5)
        await channel.close()
    back_server = _one(traced.spans(), "/test.Back/Call", SpanKind.SERVER)
    assert back_server.end_time is not None


# -- how a call ended: the log line and both spans agree with what the caller got -------


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
    traced: Traced, shape: str, ending: str, code: grpc.StatusCode
) -> None:
    with _call_lines() as lines:
        async with _serving(_service("test.Stock", SHAPES[shape])) as address:
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
    server = _one(spans, "/test.Stock/Call", SpanKind.SERVER)
    client = _one(spans, "/test.Stock/Call", SpanKind.CLIENT)
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
    traced: Traced,
) -> None:
    firehose = grpc.unary_stream_rpc_method_handler(_firehose)
    with _call_lines() as lines:
        async with _serving(_service("test.Stock", firehose)) as address:
            channel = open_channel(address)
            call = channel.unary_stream("/test.Stock/Call")(b"x", timeout=30)
            for _ in range(3):
                await call.read()
            call.cancel()  # while the server is writing
            with pytest.raises(asyncio.CancelledError):
                await call.read()
            line = await _logged_call(lines)
            await channel.close()

    server = _one(traced.spans(), "/test.Stock/Call", SpanKind.SERVER)
    client = _one(traced.spans(), "/test.Stock/Call", SpanKind.CLIENT)
    assert (line["rpc"], line["code"]) == ("/test.Stock/Call", "CANCELLED")
    assert line["span_id"] == format_span_id(server.context.span_id)
    for span in (server, client):
        assert span.attributes is not None
        assert span.attributes["rpc.grpc.status_code"] == grpc.StatusCode.CANCELLED.value[0]
