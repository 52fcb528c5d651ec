"""What the chart renders for a release that is already running.

`helm template --dry-run=server` renders as `helm install` and `helm upgrade` do, answering the
templates' `lookup` calls from the API server. Here that server is a small stand-in on loopback:
discovery for the kinds the chart renders, and the Deployments of a running release, owned by
it as Helm requires, with the replica counts a test gives them. Everything else is not found.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("inventory", "order", "payment", "user")
_spec = importlib.util.spec_from_file_location("shop_deploy_tools", ROOT / "deploy/tools.py")
assert _spec and _spec.loader
tools = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tools)


@pytest.fixture(scope="module", autouse=True)
def helm_available() -> None:
    try:
        tools.fetch()
    except (OSError, subprocess.CalledProcessError, StopIteration) as error:
        pytest.skip(f"helm could not be fetched ({error}); the chart is not checked")


@dataclass
class Cluster:
    """The API server's state: which kinds it serves and the release's live Deployments."""

    kinds: set[tuple[str, str]] = field(default_factory=set)
    """(apiVersion, kind) pairs served by discovery."""
    replicas: dict[str, int] = field(default_factory=dict)
    """Live Deployment name -> spec.replicas."""

    def deployment(self, namespace: str, name: str) -> dict[str, Any]:
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            # What Helm checks before it takes over an object on upgrade.
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": {"app.kubernetes.io/managed-by": "Helm"},
                "annotations": {
                    "meta.helm.sh/release-name": tools.RELEASE,
                    "meta.helm.sh/release-namespace": namespace,
                },
            },
            "spec": {"replicas": self.replicas[name]},
        }

    def answer(self, path: str) -> tuple[int, dict[str, Any]]:
        if path == "/version":
            return 200, {"major": "1", "minor": "33", "gitVersion": "v1.33.0"}
        if path == "/api":
            return 200, {"kind": "APIVersions", "versions": ["v1"]}
        if path == "/apis":
            return 200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": self._groups()}
        listing = re.fullmatch(r"/api/(v1)|/apis/([^/]+/[^/]+)", path)
        if listing:
            return 200, self._resources(listing.group(1) or listing.group(2))
        live = re.fullmatch(r"/apis/apps/v1/namespaces/([^/]+)/deployments/([^/]+)", path)
        if live and live.group(2) in self.replicas:
            return 200, self.deployment(live.group(1), live.group(2))
        return 404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404}

    def _groups(self) -> list[dict[str, Any]]:
        versions = sorted({version for version, _ in self.kinds if "/" in version})
        return [
            {
                "name": version.split("/")[0],
                "versions": [{"groupVersion": version, "version": version.split("/")[1]}],
                "preferredVersion": {"groupVersion": version, "version": version.split("/")[1]},
            }
            for version in versions
        ]

    def _resources(self, group_version: str) -> dict[str, Any]:
        def plural(kind: str) -> str:
            lower = kind.lower()
            return lower[:-1] + "ies" if lower.endswith("y") else lower + "s"

        resources = [
            {"name": plural(kind), "singularName": kind.lower(), "namespaced": True, "kind": kind}
            | {"verbs": ["get", "list", "create", "update", "patch", "delete"]}
            for version, kind in sorted(self.kinds)
            if version == group_version
        ]
        return {"kind": "APIResourceList", "groupVersion": group_version, "resources": resources}


class ApiServer(ThreadingHTTPServer):
    # Clients read discovery over many connections at once; the default backlog of 5 makes
    # the rest retry their connection a second later.
    request_queue_size = 64


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Cluster, Path]]:
    """A running stand-in API server and a kubeconfig that points at it."""
    state = Cluster()
    # Where helm keeps what discovery found: here, not in the home directory.
    monkeypatch.setenv("KUBECACHEDIR", str(tmp_path / "kube-cache"))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            code, body = state.answer(self.path.split("?")[0])
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: a failing test shows helm's own error."""

    server = ApiServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "c",
                        "cluster": {
                            "server": f"http://{server.server_address[0]}:{server.server_address[1]}"
                        },
                    }
                ],
                "users": [{"name": "u", "user": {}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    try:
        yield state, kubeconfig
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def documents(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def replicas(docs: list[dict[str, Any]]) -> dict[str, int]:
    """Service -> the replicas its Deployment asks for."""
    return {
        doc["metadata"]["labels"]["app.kubernetes.io/component"]: doc["spec"].get("replicas")
        for doc in docs
        if doc["kind"] == "Deployment"
        and doc["metadata"]["labels"]["app.kubernetes.io/component"] in SERVICES
    }


def render_against(
    cluster: tuple[Cluster, Path], case: str, live: dict[str, int], *flags: str
) -> list[dict[str, Any]]:
    """The chart as an upgrade of a release whose service Deployments run `live` pods."""
    state, kubeconfig = cluster
    state.kinds = {(doc["apiVersion"], doc["kind"]) for doc in documents(tools.render(case))}
    state.replicas = {f"{tools.RELEASE}-{svc}": count for svc, count in live.items()}
    server = ("--dry-run=server", "--disable-openapi-validation", "--kubeconfig", str(kubeconfig))
    # helm checks every object it would create; unthrottled, that takes milliseconds here.
    server = (*server, "--qps", "1000", "--burst-limit", "1000")
    return documents(tools.render(case, *server, *flags))


def every(count: int) -> dict[str, int]:
    return dict.fromkeys(SERVICES, count)


def test_turning_autoscaling_on_keeps_the_pods_that_run(cluster: tuple[Cluster, Path]) -> None:
    # The defaults ran 2 pods per service; the upgrade turns autoscaling on (minReplicas 2).
    docs = render_against(cluster, "autoscaling", every(2))
    assert replicas(docs) == every(2)
    assert {
        doc["spec"]["minReplicas"] for doc in docs if doc["kind"] == "HorizontalPodAutoscaler"
    } == {2}
    # Scaled out by hand before autoscaling took over: those pods stay too.
    assert replicas(render_against(cluster, "autoscaling", every(4))) == every(4)


def test_an_upgrade_keeps_what_the_autoscaler_scaled_to_and_never_goes_below_its_minimum(
    cluster: tuple[Cluster, Path],
) -> None:
    live = {"inventory": 7, "order": 10, "payment": 3, "user": 1}
    docs = render_against(cluster, "production", live)
    assert replicas(docs) == {"inventory": 7, "order": 10, "payment": 3, "user": 3}


def test_an_install_with_autoscaling_starts_at_its_minimum(cluster: tuple[Cluster, Path]) -> None:
    assert replicas(render_against(cluster, "production", {})) == every(3)
    minimum = ("--set", "serviceDefaults.autoscaling.minReplicas=4")
    assert replicas(render_against(cluster, "autoscaling", {}, *minimum)) == every(4)
    # `helm template` looks nothing up: minReplicas, or replicas when that is more.
    assert replicas(documents(tools.render("production"))) == every(3)
    more = ("--set", "services.order.replicas=5")
    assert replicas(documents(tools.render("autoscaling", *more)))["order"] == 5


def test_without_autoscaling_the_configured_count_is_rendered_whatever_runs(
    cluster: tuple[Cluster, Path],
) -> None:
    assert replicas(render_against(cluster, "default", every(5))) == every(2)
