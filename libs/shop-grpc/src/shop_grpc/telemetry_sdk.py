"""The OpenTelemetry SDK side of shop_grpc.telemetry, imported only once tracing is on.

The SDK, the OTLP exporter and the gRPC instrumentation take a noticeable
part of a second to import; a process without an exporter never loads them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.instrumentation.grpc import aio_client_interceptors
from opentelemetry.instrumentation.grpc._aio_client import (
    StreamStreamAioClientInterceptor,
    StreamUnaryAioClientInterceptor,
    UnaryStreamAioClientInterceptor,
    UnaryUnaryAioClientInterceptor,
)
from opentelemetry.sdk.resources import (
    SERVICE_INSTANCE_ID,
    SERVICE_NAME,
    OTELResourceDetector,
    Resource,
)
from opentelemetry.sdk.trace import Event, ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    ConsoleSpanExporter,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import SpanKind, Status
from opentelemetry.util.types import AttributeValue
from sqlalchemy import event
from sqlalchemy.engine import Engine

from shop_grpc.config import ServerSettings
from shop_grpc.interceptors.logging import QUIET_PREFIXES
from shop_grpc.interceptors.tracing import record_status, rpc_attributes
from shop_grpc.span_flush import CappedBatchSpanProcessor
from shop_grpc.telemetry import SCOPE

# Exception event attributes that may carry request data; the type is kept.
_DROPPED_EVENT_ATTRIBUTES = ("exception.message", "exception.stacktrace")


def build_provider(settings: ServerSettings, exporter: SpanExporter) -> TracerProvider:
    """A provider sampling per OTEL_TRACES_SAMPLER, batching to `exporter` through Redacting;
    its shutdown exports for at most the shutdown budget's flush_seconds."""
    # sampler=None: the SDK reads OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG.
    provider = TracerProvider(resource=resource(settings), sampler=None)
    flush_seconds = settings.shutdown.flush_seconds
    provider.add_span_processor(CappedBatchSpanProcessor(Redacting(exporter), flush_seconds))
    return provider


def resource(settings: ServerSettings) -> Resource:
    """Our defaults for the service's name and replica, overridden by the OTEL_* variables."""
    defaults: dict[str, AttributeValue] = {
        SERVICE_NAME: f"shop-{settings.service}",
        SERVICE_INSTANCE_ID: settings.instance_id,
    }
    # OTEL_RESOURCE_ATTRIBUTES, and OTEL_SERVICE_NAME over it.
    from_env = OTELResourceDetector().detect().attributes
    return Resource.create({**defaults, **from_env})


def exporter(kind: str) -> SpanExporter:
    """otlp: OTLP/gRPC to OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT; console: stdout."""
    if kind == "console":
        return ConsoleSpanExporter()
    # Imported here: only this exporter pulls in the OTLP protobuf and gRPC client code.
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def _traced(details: grpc.aio.ClientCallDetails) -> bool:
    # Health checks and reflection are traced on neither side, as they are not logged.
    # OTEL_PYTHON_GRPC_EXCLUDED_SERVICES is not read on this path (only by the
    # instrumentor that patches grpc globally).
    return not _method_name(details).startswith(QUIET_PREFIXES)


def client_interceptors(provider: TracerProvider) -> list[grpc.aio.ClientInterceptor]:
    """Unary calls (every call between the services) get our client spans; the streaming
    shapes the library's, patched to record a cancelled call."""
    interceptors: list[grpc.aio.ClientInterceptor] = aio_client_interceptors(  # type: ignore[no-untyped-call]
        tracer_provider=provider, filter_=_traced
    )
    streaming = [
        _cancellable(i) for i in interceptors if not isinstance(i, UnaryUnaryAioClientInterceptor)
    ]
    return [UnaryClientSpans(provider.get_tracer(SCOPE)), *streaming]


class UnaryClientSpans(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """The CLIENT span of a unary call, with the attributes the gRPC instrumentation records,
    ``traceparent`` in its metadata, and the status the caller received (CANCELLED when the
    caller was cancelled; the call is then cancelled too).

    Ours rather than the library's on this path because an unsampled call should cost almost
    nothing: under a span that is not sampled, no client span is made at all — every standard
    sampler decides a child of an unsampled span the same way, so it would record nothing —
    and the current span's ``traceparent`` (flag 00) goes out, so the callee does not sample
    the trace either. And the library's waits for the whole call inside the interceptor, then
    asks for its code and details; this one does that only for a span that records.
    """

    def __init__(self, tracer: trace.Tracer) -> None:
        self.tracer = tracer

    async def intercept_unary_unary(
        self, continuation: Callable[[Any, Any], Any], details: Any, request: Any
    ) -> Any:
        if not _traced(details):
            return await continuation(details, request)
        current = trace.get_current_span().get_span_context()
        if current.is_valid and not current.trace_flags.sampled:
            return await continuation(_carrying(details, None), request)
        method = _method_name(details)
        span = self.tracer.start_span(method, kind=SpanKind.CLIENT)
        if not span.is_recording():
            return await continuation(_carrying(details, trace.set_span_in_context(span)), request)
        span.set_attributes(rpc_attributes(method))
        call = None
        try:
            call = await continuation(_carrying(details, trace.set_span_in_context(span)), request)
            code = await call.code()
        except asyncio.CancelledError:
            if call is not None:
                call.cancel()
            record_status(span, grpc.StatusCode.CANCELLED, error=True)
            span.end()
            raise
        except grpc.aio.AioRpcError as error:
            record_status(span, error.code(), error=True)
            span.end()
            raise
        record_status(span, code, error=code is not grpc.StatusCode.OK)
        span.end()
        return call


def _method_name(details: Any) -> str:
    method = details.method
    # The method may come as bytes (grpc#31092).
    return method.decode() if isinstance(method, bytes) else str(method)


def _carrying(details: Any, context: otel_context.Context | None) -> Any:
    """`details` with ``traceparent`` (and any other propagated field) of `context`, the
    current one when None, added to its metadata."""
    metadata = grpc.aio.Metadata(*tuple(details.metadata or ()))
    propagate.inject(metadata, context=context)
    return details._replace(metadata=metadata)


class _Cancellable:
    """The library's streaming client spans, recording a cancelled call as CANCELLED.

    Its stream-unary interceptor waits for the whole call inside the
    interceptor chain, so cancelling the caller cancels only that wait: the call itself
    runs on to its deadline and its span never ends. This cancels both. Its stream-response
    ones see only Exception while reading: a cancelled stream's span ended at code 0.
    """

    def __init__(self, original: Any) -> None:
        # Takes over the state (tracer, filter, hooks) the library's factory gave it.
        self.__dict__.update(original.__dict__)

    async def _wrap_unary_response(
        self, continuation: Callable[[], Awaitable[grpc.aio.Call]], span: trace.Span
    ) -> grpc.aio.Call:
        call = await continuation()

        async def started() -> grpc.aio.Call:
            return call

        try:
            return await super()._wrap_unary_response(started, span)  # type: ignore[misc]
        except asyncio.CancelledError:
            call.cancel()
            record_status(span, grpc.StatusCode.CANCELLED, error=True)
            span.end()
            raise

    def _wrap_stream_response(self, span: trace.Span, call: grpc.aio.Call) -> Any:
        # Reading a cancelled stream raises CancelledError, which the library's generator
        # lets through, ending the span unmarked; a stream cancelled and never read again
        # is not seen at all. The call itself says when it was cancelled, either way.
        def finished(done: grpc.aio.Call) -> None:
            if done.cancelled() and span.is_recording():
                record_status(span, grpc.StatusCode.CANCELLED, error=True)

        call.add_done_callback(finished)
        return super()._wrap_stream_response(span, call)  # type: ignore[misc]


class _UnaryStream(_Cancellable, UnaryStreamAioClientInterceptor):
    pass


class _StreamUnary(_Cancellable, StreamUnaryAioClientInterceptor):
    pass


class _StreamStream(_Cancellable, StreamStreamAioClientInterceptor):
    pass


_CANCELLABLE: dict[type, type] = {
    UnaryStreamAioClientInterceptor: _UnaryStream,
    StreamUnaryAioClientInterceptor: _StreamUnary,
    StreamStreamAioClientInterceptor: _StreamStream,
}


def _cancellable(interceptor: grpc.aio.ClientInterceptor) -> grpc.aio.ClientInterceptor:
    return _CANCELLABLE[type(interceptor)](interceptor)


class SqlSpans:
    """One client span per statement, under the current span only.

    Statements run outside any traced call (recovery scans, polling) would each
    start a trace of their own and bury the useful ones, so they are skipped.
    """

    def __init__(self, tracer: trace.Tracer, engine: Engine) -> None:
        self.tracer = tracer
        url = engine.url
        system = url.get_backend_name()
        database = url.database or ""
        self.database = Path(database).name if system == "sqlite" else database
        self.attributes: dict[str, AttributeValue] = {
            "db.system": system,
            "db.name": self.database,
        }
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)
        event.listen(engine, "handle_error", self._failed)

    def _before(
        self,
        conn: Any,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: Any,
        executemany: bool,
    ) -> None:
        if context is None or not trace.get_current_span().is_recording():
            return
        operation = statement.split(None, 1)[0].upper() if statement.strip() else "SQL"
        attributes = {
            **self.attributes,
            "db.operation": operation,
            # The text as sent, with placeholders: bound values are not part of it.
            "db.statement": statement,
        }
        context._shop_span = self.tracer.start_span(
            f"{operation} {self.database}", kind=SpanKind.CLIENT, attributes=attributes
        )

    @staticmethod
    def _after(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        span = getattr(context, "_shop_span", None)
        if span is not None:
            span.end()

    @staticmethod
    def _failed(exception_context: Any) -> None:
        span = getattr(exception_context.execution_context, "_shop_span", None)
        if span is not None:
            # The driver's message may quote row values (PostgreSQL's DETAIL does).
            error = type(exception_context.original_exception).__name__
            span.set_status(Status(trace.StatusCode.ERROR, error))
            span.set_attribute("error.type", error)
            span.end()


class Redacting(SpanExporter):
    """Passes spans on without free-text status descriptions or exception messages.

    Status descriptions come from error details, which may quote what a caller
    sent (``email 'x@y' is already used``); codes and exception types say what
    went wrong without it.
    """

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.inner.export([_redacted(s) for s in spans])

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


def _redacted(span: ReadableSpan) -> ReadableSpan:
    if span.status.description is None and not any(e.name == "exception" for e in span.events):
        return span
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=span.attributes,
        events=list(_events(span.events)),
        links=span.links,
        kind=span.kind,
        status=Status(span.status.status_code),
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def _events(events: Sequence[Event]) -> Iterator[Event]:
    for item in events:
        if item.name != "exception":
            yield item
            continue
        attributes = {
            k: v for k, v in (item.attributes or {}).items() if k not in _DROPPED_EVENT_ATTRIBUTES
        }
        yield Event(item.name, attributes, item.timestamp)
