"""The OTLP/gRPC trace receiver `shop bench rpc` sends its traced servers' spans to.

It stands where a collector would (OTLP over gRPC, plaintext, on loopback), so the servers
pay the whole cost of exporting; it keeps no span, only a count per exporting process (the
`service.instance.id` resource attribute), which shows how many calls were sampled, and the
ids of the traces seen.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

TRACE_SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
INSTANCE_ATTRIBUTE = "service.instance.id"


@dataclass
class SpanSink:
    """Spans received so far, by the exporting process's instance id."""

    port: int = 0
    """The loopback port it listens on, once started."""
    spans: Counter[str] = field(default_factory=Counter)
    trace_ids: set[str] = field(default_factory=set)
    """32 hex digits each."""

    @property
    def endpoint(self) -> str:
        """The value of OTEL_EXPORTER_OTLP_ENDPOINT that reaches it."""
        return f"http://127.0.0.1:{self.port}"

    async def export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: object
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        for resource_spans in request.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            instance = attributes.get(INSTANCE_ATTRIBUTE, "")
            for scope in resource_spans.scope_spans:
                self.spans[instance] += len(scope.spans)
                self.trace_ids.update(span.trace_id.hex() for span in scope.spans)
        return trace_service_pb2.ExportTraceServiceResponse()


@asynccontextmanager
async def receiving() -> AsyncIterator[SpanSink]:
    """A SpanSink serving on a free loopback port until the block ends."""
    sink = SpanSink()
    handler = grpc.method_handlers_generic_handler(
        TRACE_SERVICE,
        {
            "Export": grpc.unary_unary_rpc_method_handler(
                sink.export,
                request_deserializer=trace_service_pb2.ExportTraceServiceRequest.FromString,
                response_serializer=trace_service_pb2.ExportTraceServiceResponse.SerializeToString,
            )
        },
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    sink.port = int(server.add_insecure_port("127.0.0.1:0"))
    await server.start()
    try:
        yield sink
    finally:
        await server.stop(0)


def exporting_to(sink: SpanSink, sampler: str, sampler_arg: str = "") -> dict[str, str]:
    """The standard variables that make a service trace with `sampler` (OTEL_TRACES_SAMPLER,
    e.g. always_on, or parentbased_traceidratio with `sampler_arg` 0.1) and export the spans
    it samples to `sink` (shop_grpc.telemetry reads them)."""
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint, "OTEL_TRACES_SAMPLER": sampler}
    if sampler_arg:
        env["OTEL_TRACES_SAMPLER_ARG"] = sampler_arg
    return env
