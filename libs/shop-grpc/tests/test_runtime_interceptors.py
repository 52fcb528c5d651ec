"""The server chain as shop_grpc.interceptors assembles it: one interceptor, its layers in the
order the module's docstring gives (outermost first), the optional ones only when switched on."""

from __future__ import annotations

from pathlib import Path

from shop_grpc import faults
from shop_grpc.interceptors import server_interceptors
from shop_grpc.interceptors._wrap import Chain
from shop_grpc.testing import test_settings


def layers(tmp_path: Path, **overrides: object) -> list[str]:
    settings = test_settings("payment", f"sqlite:///{tmp_path / 'x.db'}", **overrides)
    [chain] = server_interceptors(settings)
    assert isinstance(chain, Chain)
    return [type(layer).__name__ for layer in chain.wrappings]


def test_the_layers_run_in_the_documented_order(tmp_path):
    # Tracing is off in tests (no exporter), so ServerSpans is not among them.
    assert layers(
        tmp_path, metrics_address="127.0.0.1:0", faults=faults.parse("Charge=delay:1ms")
    ) == [
        "ServerMetrics",
        "RequestLogging",
        "IdentityCheck",
        "ErrorMapping",
        "DeadlineBinding",
        "RequestValidation",
        "FaultInjection",
    ]


def test_metrics_and_faults_are_left_out_unless_switched_on(tmp_path):
    assert layers(tmp_path) == [
        "RequestLogging",
        "IdentityCheck",
        "ErrorMapping",
        "DeadlineBinding",
        "RequestValidation",
    ]
