"""Tracing's switch (shop_grpc.telemetry): off unless an exporter is configured, and what is
buffered leaves on a graceful stop."""

from __future__ import annotations

import pytest

from shop_grpc import telemetry
from shop_grpc.config import ConfigError, Env, tracing_settings
from shop_grpc.testing import Traced, test_settings


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
