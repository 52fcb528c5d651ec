"""The cluster backend of tests/e2e against a fake Kubernetes API (no cluster needed).

It has not run against a real cluster here; these tests pin what it asks the API for and that a
forwarded local port carries bytes both ways.
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace as NS
from typing import Any

import pytest

import shop_e2e_cluster as cluster  # loaded by conftest.py

NAMESPACE, RELEASE = "shop-dev", "shop"
HERE = Path(__file__).parent
ROOT = HERE.parents[1]


class FakeApi:
    """CoreV1Api and AppsV1Api, as far as the backend uses them."""

    def __init__(self, available: bool = True) -> None:
        self.available = available
        self.forwards: list[tuple[str, str, str]] = []
        self.secret_reads: list[tuple[str, str]] = []

    def read_namespaced_deployment(self, name: str, namespace: str) -> Any:
        assert namespace == NAMESPACE
        svc = name.removeprefix(f"{RELEASE}-")
        assert svc in cluster.SERVICES, name
        state = "True" if self.available else "False"
        return NS(
            status=NS(conditions=[NS(type="Available", status=state)], available_replicas=1),
            spec=NS(selector=NS(match_labels={"app.kubernetes.io/component": svc})),
        )

    def list_namespaced_pod(self, namespace: str, label_selector: str) -> Any:
        svc = label_selector.split("=")[1]
        pods = [(f"{svc}-b", "Running"), (f"{svc}-a", "Running"), (f"{svc}-0", "Pending")]
        return NS(items=[NS(metadata=NS(name=n), status=NS(phase=p)) for n, p in pods])

    def read_namespaced_secret(self, name: str, namespace: str) -> Any:
        self.secret_reads.append((name, namespace))
        data = {k: base64.b64encode(f"{k} bytes".encode()).decode() for k in cluster.IDENTITY_FILES}
        return NS(data=data)

    def connect_get_namespaced_pod_portforward(self) -> None:
        raise AssertionError("called only through kubernetes.stream.portforward")


class EchoForward:
    """kubernetes.stream.portforward: hands out one end of a socket pair served by an echo."""

    def __init__(self, api: FakeApi) -> None:
        self.api = api

    def __call__(self, connect: Any, name: str, namespace: str, ports: str) -> Any:
        assert connect == self.api.connect_get_namespaced_pod_portforward
        self.api.forwards.append((name, namespace, ports))
        ours, theirs = socket.socketpair()
        threading.Thread(target=_echo, args=(theirs, ports), daemon=True).start()
        return NS(socket=lambda port: ours if str(port) == ports else None)


def _echo(sock: socket.socket, port: str) -> None:
    with sock:
        while data := sock.recv(1024):
            sock.sendall(port.encode() + b":" + data)


def backend(api: FakeApi, workdir: Path) -> Any:
    return cluster.ClusterSuite(api, api, EchoForward(api), NAMESPACE, RELEASE, workdir)


def test_forwarded_ports_reach_the_grpc_and_probe_ports_of_a_running_pod(tmp_path: Path) -> None:
    api = FakeApi()
    with backend(api, tmp_path) as suite:
        for endpoints, port in [(suite.endpoints(), 50051), (suite.probe_endpoints(), 8081)]:
            assert set(endpoints) == set(cluster.SERVICES)
            host, local_port = endpoints["inventory"].rsplit(":", 1)
            with socket.create_connection((host, int(local_port)), timeout=5) as conn:
                conn.sendall(b"ping")
                assert conn.recv(1024) == f"{port}:ping".encode()
    assert ("inventory-a", NAMESPACE, "50051") in api.forwards
    assert ("inventory-a", NAMESPACE, "8081") in api.forwards


def test_client_identity_comes_from_the_charts_client_secret(tmp_path: Path) -> None:
    api = FakeApi()
    with backend(api, tmp_path) as suite:
        client = suite.certs_dir / "client"
        assert (client / "tls.key").read_bytes() == b"tls.key bytes"
        assert (client / "tls.key").stat().st_mode & 0o077 == 0
        assert (suite.certs_dir / "ca" / "ca.crt").read_bytes() == b"ca.crt bytes"
    assert api.secret_reads == [(f"{RELEASE}-client-tls", NAMESPACE)]


def test_unavailable_deployments_time_out_naming_them(tmp_path: Path) -> None:
    with pytest.raises(TimeoutError, match="order"):
        backend(FakeApi(available=False), tmp_path).wait_ready(timeout=0)


def pytest_in(tmp_path: Path, *args: str, context_env: str = "") -> str:
    """tests/e2e run in a child pytest with a kubeconfig that knows no cluster."""
    env = {k: v for k, v in os.environ.items() if k != "SHOP_E2E_KUBE_CONTEXT"}
    env["KUBECONFIG"] = str(tmp_path / "kubeconfig")
    (tmp_path / "kubeconfig").write_text("apiVersion: v1\nkind: Config\ncontexts: []\n")
    if context_env:
        env["SHOP_E2E_KUBE_CONTEXT"] = context_env
    command = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *args]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    return done.stdout


@pytest.mark.parametrize("how", ["env", "option"])
def test_a_kube_context_skips_local_only_scenarios_with_a_reason(tmp_path: Path, how: str) -> None:
    recovery = str(HERE / "test_e2e_recovery.py")
    if how == "env":
        out = pytest_in(tmp_path, recovery, context_env="kind-shop")
    else:
        out = pytest_in(tmp_path, recovery, "--kube-context=kind-shop")
    assert "1 skipped" in out, out
    assert "stops processes or reads local files; cluster mode (kind-shop)" in out


def test_a_kube_context_makes_the_suite_fixture_connect_to_that_cluster(tmp_path: Path) -> None:
    happy = str(HERE / "test_e2e_orders.py") + "::test_happy_path_confirms_charges_and_sells"
    out = pytest_in(tmp_path, happy, context_env="no-such-context")
    # The kubernetes client was asked for the context: no local suite was started.
    assert "1 error" in out and "no-such-context" in out, out
