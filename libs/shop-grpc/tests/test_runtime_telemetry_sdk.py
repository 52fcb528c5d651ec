"""The OpenTelemetry SDK as the runtime sets it up (shop_grpc.telemetry_sdk)."""

from __future__ import annotations

import pytest

from shop_grpc import telemetry_sdk
from shop_grpc.testing import test_settings


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
