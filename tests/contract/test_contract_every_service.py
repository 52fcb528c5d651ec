"""What every service of the suite promises, checked for each one the registry finds.

A new service gets these checks by declaring itself (shop_grpc.registry); nothing here names
one.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
from grpc_health.v1 import health_pb2

from shop_grpc import registry
from shop_grpc.testing import ServiceProcess, free_port

SPECS = list(registry.services().values())
IDS = [spec.name for spec in SPECS]


def test_the_suite_finds_its_services_where_they_are_installed():
    assert SPECS, "no service declares itself under the shop.services entry points"
    for spec in SPECS:
        for dependency in spec.depends_on:
            assert dependency in registry.names(), f"{spec.name} calls unknown {dependency}"
    order = registry.start_order()
    for spec in SPECS:
        assert all(order.index(dep) < order.index(spec.name) for dep in spec.depends_on)


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_every_method_says_who_may_call_it(spec: registry.ServiceSpec) -> None:
    # A method without a row is closed to everyone: a new one must be decided on, not forgotten.
    assert set(spec.callers) == {method.name for method in spec.descriptor.methods}
    known = {*registry.identities(), registry.ANYONE, registry.CUSTOMER}
    for method, callers in spec.callers.items():
        assert callers, f"{method} is closed to everyone"
        assert set(callers) <= known, f"{method} names an identity nobody has: {callers}"


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
async def test_it_serves_health_and_reflection_then_stops_cleanly_on_sigterm(
    spec: registry.ServiceSpec, tmp_path
) -> None:
    async with ServiceProcess(spec.main_module, tmp_path) as service:
        assert await service.health(spec.full_name) == health_pb2.HealthCheckResponse.SERVING
        assert {spec.full_name, "grpc.health.v1.Health"} <= await service.listed_services()
        assert await service.terminate() == 0
    assert (tmp_path / f"{spec.name}.db").exists()


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_a_bad_setting_exits_2_naming_the_variable(spec: registry.ServiceSpec, tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", spec.main_module],
        env={**os.environ, "SHOP_LOG_LEVEL": "loud", "SHOP_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "SHOP_LOG_LEVEL" in result.stderr


PORT_VARIABLES = ("SHOP_LISTEN_ADDRESS", "SHOP_PROBE_ADDRESS", "SHOP_METRICS_ADDRESS")


@pytest.mark.parametrize("variable", PORT_VARIABLES)
@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_a_port_taken_by_another_process_exits_2_naming_its_variable(
    spec: registry.ServiceSpec, variable: str, tmp_path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ports = {name: f"127.0.0.1:{free_port()}" for name in PORT_VARIABLES}
        ports[variable] = f"127.0.0.1:{taken.getsockname()[1]}"
        result = subprocess.run(
            [sys.executable, "-m", spec.main_module],
            env={**os.environ, **ports, "SHOP_INSECURE": "1", "SHOP_DATA_DIR": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 2, result.stderr
    assert f"{variable} {ports[variable]}:" in result.stderr
    # And nothing else goes wrong on the way out: every server started was stopped.
    assert "Traceback" not in result.stderr
    assert "Exception ignored" not in result.stderr and "never awaited" not in result.stderr
