"""OpenTelemetry tracing, configured only by the standard ``OTEL_*`` variables.

Tracing is on when an exporter is configured (``config.tracing_settings``):
``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, or
``OTEL_TRACES_EXPORTER=otlp|console``. Otherwise nothing is installed: no
interceptors, no SQL listeners, the SDK is not even imported, and ``span()``
hands out a shared no-op, so a service runs as if tracing did not exist.

When on (shop_grpc.telemetry_sdk), the SDK reads the other standard variables
itself: ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES`` (which win over
our defaults: ``shop-<service>``, and ``service.instance.id`` = SHOP_INSTANCE_ID,
the pod name in a cluster, the replica's address locally), ``OTEL_TRACES_SAMPLER``
/ ``_ARG`` (e.g. ``parentbased_traceidratio`` and ``0.1``), ``OTEL_BSP_*`` for
batching, and ``OTEL_EXPORTER_OTLP_*`` for headers, certificates and timeouts.

What is traced: every gRPC call served (shop_grpc.interceptors.tracing) and made
(the OpenTelemetry gRPC instrumentation, patched in telemetry_sdk), except health
checks and reflection (noise), each with the status its caller got, CANCELLED and
DEADLINE_EXCEEDED included (shop_grpc.outcome); each SQL statement run inside traced
work, as its text with placeholders (bound values never leave the process); and
what services wrap in ``span()``. Spans leave through a filter that keeps status
codes and exception types but drops free-text messages, which may quote input.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING

import structlog
from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN, Span
from opentelemetry.util.types import AttributeValue

from shop_grpc.config import ServerSettings

if TYPE_CHECKING:
    import grpc
    from opentelemetry.sdk.trace import TracerProvider
    from sqlalchemy.engine import Engine

    from shop_grpc.interceptors._wrap import HandlerWrapping

log = structlog.get_logger("shop_grpc.telemetry")

SCOPE = "shop_grpc"

_provider: TracerProvider | None = None
_tracer: trace.Tracer | None = None
_NO_SPAN = contextlib.nullcontext(INVALID_SPAN)


def configure(settings: ServerSettings) -> None:
    """Installs tracing for this process if an exporter is configured; else does nothing.

    Call it before building servers, channels and databases: they read it then.
    """
    kind = settings.tracing.exporter
    if kind == "none":
        return
    # Imported only now: the SDK is not loaded at all while tracing is off.
    from shop_grpc import telemetry_sdk as sdk

    provider = sdk.build_provider(settings, sdk.exporter(kind))
    trace.set_tracer_provider(provider)
    use(provider)
    service_name = provider.resource.attributes.get("service.name")
    log.info("tracing on", exporter=kind, service_name=service_name)


def use(provider: TracerProvider | None) -> None:
    """Makes `provider` the one spans go to (None: tracing off); tests call it directly."""
    global _provider, _tracer
    _provider = provider
    _tracer = None if provider is None else provider.get_tracer(SCOPE)


def enabled() -> bool:
    return _provider is not None


def shutdown() -> None:
    """Exports what is still buffered and stops; part of every graceful stop.

    Takes at most the shutdown budget's flush_seconds (shop_grpc.span_flush).
    """
    global _provider, _tracer
    provider, _provider, _tracer = _provider, None, None
    if provider is not None:
        provider.shutdown()


def server_interceptors() -> list[HandlerWrapping]:
    """The server-span wrapping, or none at all when tracing is off."""
    if _tracer is None:
        return []
    from shop_grpc.interceptors.tracing import ServerSpans

    return [ServerSpans(_tracer)]


def client_interceptors() -> list[grpc.aio.ClientInterceptor]:
    """The client-span interceptors (one per call shape), or none when tracing is off."""
    if _provider is None:
        return []
    from shop_grpc import telemetry_sdk

    return telemetry_sdk.client_interceptors(_provider)


def span(
    name: str, attributes: Mapping[str, AttributeValue] | None = None
) -> contextlib.AbstractContextManager[Span]:
    """A span around a piece of work, child of the current one; a shared no-op when off.

    Attributes must never hold personal or card data: ids, counts and amounts only.
    """
    if _tracer is None:
        return _NO_SPAN
    return _tracer.start_as_current_span(name, attributes=attributes)


def trace_engine(engine: Engine) -> None:
    """Spans for the SQL statements `engine` runs inside traced work (no-op when off)."""
    if _tracer is None:
        return
    from shop_grpc import telemetry_sdk

    telemetry_sdk.SqlSpans(_tracer, engine)
