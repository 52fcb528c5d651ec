"""What an operator does against a running suite: list services, probe, run the demo, load it."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from shop_grpc import registry
from shop_grpc.channels import open_channel
from shop_grpc.config import TlsSettings

SERVICES = {spec.name: spec.full_name for spec in registry.services().values()}


def shop(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shop_cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("name", sorted(SERVICES))
async def test_reflection_lists_the_service_and_health_on_every_port(suite, name):
    tls = TlsSettings(suite.certs_dir / "client")
    async with open_channel(suite.endpoints()[name], tls=tls, server_name=name) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        [reply] = [r async for r in stub.ServerReflectionInfo(iter([request]), timeout=5)]
    listed = {s.name for s in reply.list_services_response.service}
    assert {SERVICES[name], "grpc.health.v1.Health"} <= listed


def test_probe_exits_0_for_a_serving_service_and_3_for_an_unknown_one(suite):
    order = suite.probe_endpoints()["order"]
    serving = shop("probe", order)
    assert serving.returncode == 0, serving.stdout + serving.stderr
    assert "SERVING" in serving.stdout
    assert shop("probe", order, "--service", SERVICES["order"]).returncode == 0
    assert shop("probe", order, "--service", "no.such.Service").returncode == 3


def test_probe_checks_the_mtls_port_with_grpc_health_probes_tls_options(suite):
    order, client = suite.endpoints()["order"], suite.certs_dir / "client"
    files = [
        f"-tls-ca-cert={client / 'ca.crt'}",
        f"-tls-client-cert={client / 'tls.crt'}",
        f"-tls-client-key={client / 'tls.key'}",
    ]
    serving = shop("probe", order, "-tls", *files, "-tls-server-name=order")
    assert serving.returncode == 0, serving.stdout + serving.stderr
    # 127.0.0.1 is in every service certificate, so the address alone also verifies.
    assert shop("probe", order, "--tls", *files).returncode == 0
    # Without a client certificate, or in plaintext, the mTLS port lets nobody in.
    assert shop("probe", order, "-tls", files[0]).returncode == 2
    assert shop("probe", order).returncode == 2
    assert shop("probe", order, *files).returncode == 1  # -tls-* without -tls


def test_demo_places_a_confirmed_order_and_can_run_again(suite, target_flags):
    targets = list(target_flags)
    targets.append(f"--tls-dir={suite.certs_dir / 'client'}")
    for _ in range(2):
        demo = shop("demo", *targets)
        assert demo.returncode == 0, demo.stdout + demo.stderr
        assert "CONFIRMED" in demo.stdout


def test_demo_with_a_fresh_customer_signs_up_one_per_run_and_shows_no_password(suite, target_flags):
    targets = [*target_flags, f"--tls-dir={suite.certs_dir / 'client'}"]
    signed_in = []
    for _ in range(2):
        demo = shop("demo", "--fresh-customer", *targets)
        assert demo.returncode == 0, demo.stdout + demo.stderr
        assert "CONFIRMED" in demo.stdout
        (line,) = [x for x in demo.stderr.splitlines() if x.startswith("signed in as ")]
        signed_in.append(line.removeprefix("signed in as "))
        assert "password" not in (demo.stdout + demo.stderr).lower()
    assert signed_in[0] != signed_in[1] and all(n.startswith("demo-") for n in signed_in)


@pytest.mark.local_only
def test_bench_prints_each_services_cpu_per_confirmed_order_from_the_published_pids(
    suite, target_flags
):
    targets = list(target_flags)
    targets.append(f"--tls-dir={suite.certs_dir / 'client'}")
    window = ["--clients=2", "--duration=1", f"--data-dir={suite.data_dir}"]
    bench = shop("bench", *targets, *window)
    assert bench.returncode == 0, bench.stdout + bench.stderr
    confirmed = re.search(r"^order status .*CONFIRMED (\d+)", bench.stdout, re.M)
    assert confirmed, bench.stdout
    assert f"the {confirmed.group(1)} orders that became CONFIRMED" in bench.stdout
    for service in [*suite.endpoints(), "total"]:
        line = rf"^cpu {service}\s+\d+\.\d ms per order"
        assert re.search(line, bench.stdout, re.M), bench.stdout
    assert "consistency violations: 0" in bench.stdout
