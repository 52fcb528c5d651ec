"""``traced``: every span of the test recorded in memory, through the services' own set-up."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shop_grpc import telemetry, telemetry_sdk
from shop_grpc.config import ServerSettings
from shop_grpc.testing.serving import test_settings


class Traced:
    """An in-memory span sink behind the same provider set-up the services use."""

    def __init__(self, settings: ServerSettings) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider: TracerProvider = telemetry_sdk.build_provider(settings, self.exporter)

    def spans(self) -> list[ReadableSpan]:
        self.provider.force_flush()
        return list(self.exporter.get_finished_spans())


@pytest.fixture
def traced(monkeypatch: pytest.MonkeyPatch) -> Iterator[Traced]:
    """Tracing on, every trace sampled, for the test's servers and channels."""
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_on")
    sink = Traced(test_settings("user", "sqlite://", instance_id="user@127.0.0.1:1"))
    telemetry.use(sink.provider)
    yield sink
    telemetry.use(None)
    sink.provider.shutdown()
