"""The OpenTelemetry SDK as the runtime sets it up (shop_grpc.telemetry_sdk): the resource,
parent-based sampling, client spans that pass an unsampled decision on and still cancel,
SQL spans, and an exporter that lets no free text leave."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

import grpc
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode, format_span_id, format_trace_id
from sqlalchemy import text

from shop_grpc import telemetry, telemetry_sdk
from shop_grpc.channels import open_channel
from shop_grpc.errors import AlreadyExists
from shop_grpc.storage import Database
from shop_grpc.testing import Traced, rpc_fails, test_settings


def test_the_environment_overrides_the_resource_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = test_settings("payment", "sqlite://", instance_id="payment@127.0.0.3:50053")
    defaults = telemetry_sdk.resource(settings).attributes
    assert defaults["service.name"] == "shop-payment"
    assert defaults["service.instance.id"] == "payment@127.0.0.3:50053"
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.instance.id=payment-7d9f,team=shop")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "payments")
    overridden = telemetry_sdk.resource(settings).attributes
    assert overridden["service.name"] == "payments"
    assert overridden["service.instance.id"] == "payment-7d9f"
    assert overridden["team"] == "shop"


TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
SECRET_EMAIL = "someone@example.com"


async def _served_spans(
    loopback, traced: Traced, metadata: tuple[tuple[str, str], ...] = ()
) -> list[str]:
    async def echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return request

    async with (
        loopback.serving(loopback.service("test.Echo", loopback.unary(echo))) as address,
        grpc.aio.insecure_channel(address) as channel,
    ):
        await loopback.call(channel, "test.Echo")(b"x", timeout=5, metadata=metadata)
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
    loopback,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with _sampling_at(monkeypatch, "0") as sink:
        assert await _served_spans(loopback, sink) == []
        assert await _served_spans(loopback, sink, _traceparent(sampled=True)) == [
            "/test.Echo/Call"
        ]
    (span,) = sink.spans()
    assert format_trace_id(span.context.trace_id) == TRACE_ID
    assert span.parent is not None and format_span_id(span.parent.span_id) == PARENT_ID


async def test_an_unsampled_parent_is_followed_even_at_ratio_one(
    loopback,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with _sampling_at(monkeypatch, "1") as sink:
        assert await _served_spans(loopback, sink, _traceparent(sampled=False)) == []
        assert await _served_spans(loopback, sink) == ["/test.Echo/Call"]


async def test_under_an_unsampled_parent_calls_pass_the_decision_on_and_record_nothing(
    loopback,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    received: list[str] = []

    async def back(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        received.append(dict(context.invocation_metadata())["traceparent"])
        return b"back"

    with _sampling_at(monkeypatch, "1") as sink:
        reply = await loopback.through_front(back, _traceparent(sampled=False))
    assert reply == b"back"
    assert sink.spans() == []
    [traceparent] = received
    _, trace_id, _, flags = traceparent.split("-")
    assert (trace_id, flags) == (TRACE_ID, "00")


async def test_error_messages_never_leave_in_spans(loopback, traced: Traced) -> None:
    async def clash(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        raise AlreadyExists("user", SECRET_EMAIL, f"email {SECRET_EMAIL!r} is already used")

    async with loopback.serving(loopback.service("test.Clash", loopback.unary(clash))) as address:
        channel = open_channel(address, default_timeout=5)
        with rpc_fails(grpc.StatusCode.ALREADY_EXISTS) as caught:
            await loopback.call(channel, "test.Clash")(b"x")
        await channel.close()
    assert SECRET_EMAIL in caught.details, "the caller still gets the message"
    spans = traced.spans()
    client = loopback.one_span(spans, "/test.Clash/Call", SpanKind.CLIENT)
    server = loopback.one_span(spans, "/test.Clash/Call", SpanKind.SERVER)
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
    loopback, traced: Traced, database_url: str
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
    work = loopback.one_span(spans, "work", SpanKind.INTERNAL)
    statements = [s for s in spans if s.kind is SpanKind.CLIENT]
    assert statements, "no SQL spans under the traced work"
    assert all(loopback.parent_id(s) == work.context.span_id for s in statements)
    [insert] = [s for s in statements if s.name.startswith("INSERT ")]
    assert insert.attributes is not None
    assert insert.attributes["db.statement"] in {
        "INSERT INTO people (email) VALUES (?)",  # SQLite
        "INSERT INTO people (email) VALUES ($1)",  # PostgreSQL (asyncpg)
    }
    assert all(SECRET_EMAIL not in _everything(s) for s in spans)
    assert not any("CREATE" in s.name for s in spans), "untraced work made spans"


async def test_with_tracing_on_cancelling_a_call_still_cancels_the_calls_it_made(
    loopback,
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

    async with loopback.serving(
        loopback.service("test.Back", loopback.unary(back))
    ) as back_address:
        channel = open_channel(back_address)

        async def front(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            return bytes(await loopback.call(channel, "test.Back")(b"x"))

        async with (
            loopback.serving(
                loopback.service("test.Front", loopback.unary(front))
            ) as front_address,
            grpc.aio.insecure_channel(front_address) as caller,
        ):
            call = loopback.call(caller, "test.Front")(b"x", timeout=30)
            await asyncio.wait_for(started.wait(), 5)
            call.cancel()
            await asyncio.wait_for(cancelled.wait(), 5)
        await channel.close()
    back_server = loopback.one_span(traced.spans(), "/test.Back/Call", SpanKind.SERVER)
    assert back_server.end_time is not None
