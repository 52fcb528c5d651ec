"""Prometheus metrics of a service process, served at ``/metrics`` (shop_grpc.metrics.endpoint).

What every service exports, through the runtime:

- **gRPC calls**, served and made (shop_grpc.metrics.rpc): the families and labels of
  go-grpc-prometheus (``grpc_server_handled_total{grpc_type, grpc_service, grpc_method,
  grpc_code}``, ``grpc_server_handling_seconds``, ``grpc_client_*`` …), so the dashboards and
  alert rules written for it work unchanged. Health checks and reflection are not counted, as
  they are not logged or traced: probes would drown the rates.
- **Database transactions** (shop_grpc.metrics.database): ``shop_db_transaction_duration_seconds``.
- **The process**: the client library's own collectors, ``process_*`` (CPU seconds, resident
  memory, open file descriptors, start time) and ``python_*`` (garbage collection, version).

``SHOP_METRICS_ADDRESS=off`` serves nothing and records no gRPC call (what the performance
benchmark compares against); the other families cost a counter or two per transaction or step.

Each service adds its domain's numbers next to its own code (orders, reservations, payments).

Duration histograms carry an OpenMetrics exemplar, the trace id of the call observed, when that
call's span is sampled (``trace_exemplar``): a slow bucket leads to a trace. Exemplars are part
of the OpenMetrics exposition only, which Prometheus asks for (and stores with
``--enable-feature=exemplar-storage``).

Label values are bounded sets (method names, status codes, steps, outcomes): never an id, a
user's data or free text, so a metric's series stay few and leak nothing.
"""

from __future__ import annotations

from opentelemetry import trace
from prometheus_client import disable_created_metrics

from shop_grpc.config import ServerSettings

# No `_created` series beside each counter and histogram: go-grpc-prometheus exports none, no
# dashboard or rule here reads them, and they were a sixth of the suite's series.
disable_created_metrics()  # type: ignore[no-untyped-call]

TRACE_ID = "trace_id"
SPAN_ID = "span_id"

_enabled = False


def configure(settings: ServerSettings) -> None:
    """Records gRPC calls made from this process (channels opened from now on) when the
    settings serve metrics; served calls are the server's own choice (its settings)."""
    global _enabled
    _enabled = bool(settings.metrics_address)


def enabled() -> bool:
    return _enabled


def trace_exemplar() -> dict[str, str] | None:
    """``{"trace_id": 32 hex digits, "span_id": 16}`` of the current span when it is sampled;
    None otherwise (tracing off, or this trace not sampled), so an exemplar always leads to a
    trace that was exported. The label names are the ones OpenTelemetry's Prometheus exporter
    uses."""
    context = trace.get_current_span().get_span_context()
    if not context.trace_flags.sampled:
        return None
    return {TRACE_ID: format(context.trace_id, "032x"), SPAN_ID: format(context.span_id, "016x")}
