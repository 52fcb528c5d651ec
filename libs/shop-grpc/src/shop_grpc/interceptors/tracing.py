"""The server span of each call, ended with the status its caller receives.

Installed only when tracing is on (shop_grpc.telemetry). Ours rather than the
OpenTelemetry gRPC instrumentation's aio server interceptor, which sees only Exception
(a cancelled or expired call's span said code 0, OK) and keeps its span current across
a response generator's yields, which fails once grpc.aio closes the generator from
another task (opentelemetry-python-contrib#2357). Attributes are the ones it records:
``rpc.system``, ``rpc.service``, ``rpc.method``, ``rpc.grpc.status_code`` and the
peer's address.
"""

from __future__ import annotations

from typing import Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from shop_grpc.interceptors._wrap import AroundEachCall, Behavior
from shop_grpc.interceptors.logging import QUIET_PREFIXES
from shop_grpc.outcome import Outcome

RPC_GRPC_STATUS_CODE = "rpc.grpc.status_code"
"""The numeric status code, where the gRPC instrumentation records it on both sides."""

# Semantic conventions for gRPC: the codes that make a server span an error. The others
# are the caller's doing (CANCELLED, NOT_FOUND, INVALID_ARGUMENT, ...); a client span is
# an error for every code but OK.
SERVER_ERRORS = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)


class ServerSpans(AroundEachCall):
    """One SERVER span per call, child of the caller's ``traceparent``; health checks and
    reflection are not traced (noise)."""

    def __init__(self, tracer: trace.Tracer) -> None:
        self.tracer = tracer

    def applies_to(self, method: str) -> bool:
        return not method.startswith(QUIET_PREFIXES)

    def advise(self, method: str, behavior: Behavior) -> Behavior:
        tracer = self.tracer

        async def traced(request: Any, context: grpc.aio.ServicerContext) -> Any:
            parent = propagate.extract(dict(context.invocation_metadata()))
            span = tracer.start_span(method, parent, SpanKind.SERVER)
            # The sampler (parent-based ratio) decides on the trace alone; an unsampled call's
            # span records nothing, so nothing is worked out for it.
            recording = span.is_recording()
            if recording:
                span.set_attributes(_attributes(method, context))
            # The call's task has its own copy of the context: nothing to detach.
            otel_context.attach(trace.set_span_in_context(span, parent))
            outcome = Outcome(context)
            try:
                with outcome:
                    return await behavior(request, context)
            finally:
                if recording:
                    record_status(span, outcome.code, error=outcome.code in SERVER_ERRORS)
                span.end()

        return traced


def record_status(span: trace.Span, code: grpc.StatusCode, *, error: bool) -> None:
    """Sets ``rpc.grpc.status_code``, and the span's status to ERROR if `error`."""
    span.set_attribute(RPC_GRPC_STATUS_CODE, code.value[0])
    if error:
        span.set_status(Status(StatusCode.ERROR))


def rpc_attributes(method: str) -> dict[str, AttributeValue]:
    """``rpc.system``, ``rpc.service`` and ``rpc.method`` of `method` (``/package.Service/Name``),
    as the gRPC instrumentation records them on server and client spans."""
    service, _, name = method.lstrip("/").partition("/")
    return {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}


def _attributes(method: str, context: grpc.aio.ServicerContext) -> dict[str, AttributeValue]:
    attributes = rpc_attributes(method)
    # ipv4:10.1.2.3:5678 or ipv6:[::1]:5678; a unix: peer has no address to give.
    kind, _, address = context.peer().partition(":")
    host, _, port = address.rpartition(":")
    if kind in {"ipv4", "ipv6"} and port.isdigit():
        attributes["network.peer.address"] = host.strip("[]")
        attributes["network.peer.port"] = int(port)
    return attributes
