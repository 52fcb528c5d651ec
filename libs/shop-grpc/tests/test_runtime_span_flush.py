"""The last export of a stopping process, cut off at its share of the budget
(shop_grpc.span_flush)."""

from __future__ import annotations

import time

import pytest
import structlog

from shop_grpc import telemetry, telemetry_sdk
from shop_grpc.config import ShutdownSettings
from shop_grpc.span_flush import AFTER_CUT_SECONDS
from shop_grpc.testing import free_port, test_settings


def test_an_unreachable_collector_holds_a_stop_no_longer_than_its_flush_share(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_on")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "600000")  # a full batch leaves, no more
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    flush_seconds = 0.5
    budget = ShutdownSettings(flush_seconds=flush_seconds)
    settings = test_settings("order", "sqlite://", shutdown=budget)
    # The real OTLP exporter, retrying UNAVAILABLE for up to 10 s per batch of 512.
    telemetry.use(telemetry_sdk.build_provider(settings, telemetry_sdk.exporter("otlp")))
    for number in range(600):
        with telemetry.span("saga CHARGING_PAYMENT", {"shop.order.id": f"o-{number}"}):
            pass
    with structlog.testing.capture_logs() as lines:
        began = time.monotonic()
        telemetry.shutdown()
        took = time.monotonic() - began
    assert took < flush_seconds + AFTER_CUT_SECONDS + 0.5
    [cut] = [line for line in lines if line["event"] == "span flush cut short"]
    assert cut["spans_dropped"] == 600
