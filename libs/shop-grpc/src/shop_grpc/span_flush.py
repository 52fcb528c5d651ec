"""The last span export of a stopping process, kept to its share of the shutdown budget.

Imported only once tracing is on (with shop_grpc.telemetry_sdk). The SDK cannot bound
it: ``BatchSpanProcessor.shutdown()`` exports every buffered batch, waiting up to 30 s
for its worker, and takes no timeout; ``force_flush()`` ignores the one it is given
(opentelemetry-python#4568); and the OTLP exporter retries UNAVAILABLE with backoff for
up to OTEL_EXPORTER_OTLP_TIMEOUT (10 s) per batch. With the collector unreachable, a
service that had served a few hundred traced calls took 20 s to stop. Here the flush
gets ``flush_seconds`` (config.ShutdownSettings); then the export in progress is
aborted and what is left is dropped.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import structlog
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

log = structlog.get_logger("shop_grpc.telemetry")

AFTER_CUT_SECONDS = 0.5
"""How long the SDK's own shutdown may take to wind down once the export is cut off:
the worker then only drops batches. It runs on as a daemon thread if it takes longer."""


class CappedBatchSpanProcessor(BatchSpanProcessor):
    """A BatchSpanProcessor (configured by OTEL_BSP_*) whose shutdown, however it is
    called (a graceful stop, or the provider's own at interpreter exit), exports for at
    most `flush_seconds` and then drops what is still buffered."""

    def __init__(self, exporter: SpanExporter, flush_seconds: float) -> None:
        self.cutoff = Cutoff(exporter)
        super().__init__(self.cutoff)
        self.flush_seconds = flush_seconds
        self._stopping: threading.Thread | None = None

    def shutdown(self) -> None:
        if self._stopping is not None:
            return  # stopped already
        # The SDK's shutdown runs aside, so it can be abandoned; daemon: it never holds
        # the process at exit.
        self._stopping = threading.Thread(target=super().shutdown, name="span-flush", daemon=True)
        self._stopping.start()
        self._stopping.join(self.flush_seconds)
        if self._stopping.is_alive():
            self.cutoff.cut()
            self._stopping.join(AFTER_CUT_SECONDS)
            log.warning(
                "span flush cut short",
                flush_seconds=self.flush_seconds,
                spans_dropped=self.cutoff.dropped,
            )


class Cutoff(SpanExporter):
    """Passes batches on until ``cut()``; from then on drops them, and counts what it drops."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner
        self.dropped = 0
        self._cut = threading.Event()
        self._closing = threading.Lock()
        self._closed = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if not self._cut.is_set():
            result = self.inner.export(spans)
            if result is SpanExportResult.SUCCESS or not self._cut.is_set():
                return result
        self.dropped += len(spans)
        return SpanExportResult.FAILURE

    def cut(self) -> None:
        """Drops every batch from now on, and aborts the one being exported: the OTLP
        exporter's shutdown ends its retry wait and closes its channel, which fails the
        call in flight."""
        self._cut.set()
        self.shutdown()

    def shutdown(self) -> None:
        with self._closing:
            if self._closed:
                return
            self._closed = True
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)
