"""The suite as a Helm release in a cluster, offering what the scenarios use of the local Suite.

Readiness comes from the Deployments' status, the client identity from the chart's
`<release>-client-tls` Secret, and each service's gRPC and probe ports are forwarded to
127.0.0.1 through the Kubernetes API (one port-forward stream per accepted connection).
"""

from __future__ import annotations

import base64
import contextlib
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shop_grpc import registry

SERVICES = registry.names()
GRPC_PORT, PROBE_PORT = 50051, 8081
IDENTITY_FILES = ("ca.crt", "tls.crt", "tls.key")


class ClusterSuite:
    """`endpoints()`, `probe_endpoints()` and `certs_dir` of a release in one namespace."""

    def __init__(
        self,
        core: Any,
        apps: Any,
        portforward: Callable[..., Any],
        namespace: str,
        release: str,
        workdir: Path,
    ) -> None:
        self.core, self.apps, self._portforward = core, apps, portforward
        self.namespace, self.release = namespace, release
        self.certs_dir = workdir / "certs"
        self._listeners: list[socket.socket] = []
        self._endpoints: dict[str, str] = {}
        self._probes: dict[str, str] = {}

    def __enter__(self) -> ClusterSuite:
        self.wait_ready()
        self.write_client_identity()
        for svc in SERVICES:
            self._endpoints[svc] = self.forward(svc, GRPC_PORT)
            self._probes[svc] = self.forward(svc, PROBE_PORT)
        return self

    def __exit__(self, *_: object) -> None:
        for listener in self._listeners:
            listener.close()

    def endpoints(self) -> dict[str, str]:
        return dict(self._endpoints)

    def probe_endpoints(self) -> dict[str, str]:
        return dict(self._probes)

    def wait_ready(self, timeout: float = 180) -> None:
        """Every service's Deployment reports Available with all replicas updated."""
        deadline = time.monotonic() + timeout
        waiting = list(SERVICES)
        while waiting:
            waiting = [svc for svc in waiting if not self._available(svc)]
            if waiting and time.monotonic() > deadline:
                raise TimeoutError(f"deployments not available in {self.namespace}: {waiting}")
            if waiting:
                time.sleep(2)

    def _available(self, svc: str) -> bool:
        status = self.apps.read_namespaced_deployment(
            f"{self.release}-{svc}", self.namespace
        ).status
        conditions = {c.type: c.status for c in status.conditions or []}
        return conditions.get("Available") == "True" and bool(status.available_replicas)

    def write_client_identity(self) -> None:
        """The `shop` CLI's identity, as `shop certs init` lays it out, from the chart's Secret."""
        secret = self.core.read_namespaced_secret(f"{self.release}-client-tls", self.namespace)
        client = self.certs_dir / "client"
        client.mkdir(parents=True, exist_ok=True)
        for name in IDENTITY_FILES:
            (client / name).write_bytes(base64.b64decode(secret.data[name]))
        (client / "tls.key").chmod(0o600)
        # Where the local suite keeps the CA certificate (never its key: the chart keeps that).
        (self.certs_dir / "ca").mkdir(exist_ok=True)
        (self.certs_dir / "ca" / "ca.crt").write_bytes((client / "ca.crt").read_bytes())

    def pod_of(self, svc: str) -> str:
        """A running pod of the service's Deployment, found by the Deployment's own selector."""
        deployment = self.apps.read_namespaced_deployment(f"{self.release}-{svc}", self.namespace)
        labels = deployment.spec.selector.match_labels
        selector = ",".join(f"{key}={value}" for key, value in sorted(labels.items()))
        pods = self.core.list_namespaced_pod(self.namespace, label_selector=selector).items
        running = [p.metadata.name for p in pods if p.status.phase == "Running"]
        if not running:
            raise RuntimeError(f"no running pod of {svc} ({selector})")
        return sorted(running)[0]

    def forward(self, svc: str, port: int) -> str:
        """A 127.0.0.1 address whose connections reach `port` of one pod of `svc`."""
        pod = self.pod_of(svc)
        listener = socket.create_server(("127.0.0.1", 0))
        self._listeners.append(listener)
        threading.Thread(target=self._accept, args=(listener, pod, port), daemon=True).start()
        return f"127.0.0.1:{listener.getsockname()[1]}"

    def _accept(self, listener: socket.socket, pod: str, port: int) -> None:
        while True:
            try:
                local, _ = listener.accept()
            except OSError:
                return  # closed by __exit__
            stream = self._portforward(
                self.core.connect_get_namespaced_pod_portforward,
                pod,
                self.namespace,
                ports=str(port),
            )
            remote = stream.socket(port)
            remote.setblocking(True)
            for source, sink in ((local, remote), (remote, local)):
                threading.Thread(target=_pipe, args=(source, sink), daemon=True).start()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for end in (source, sink):
            with contextlib.suppress(OSError):  # the other direction already closed it
                end.shutdown(socket.SHUT_RDWR)


def connect(context: str, namespace: str, release: str, workdir: Path) -> ClusterSuite:
    """A ClusterSuite on the real API of `context` (imported here: local runs need no client)."""
    from kubernetes import client, config
    from kubernetes.stream import portforward

    api = config.new_client_from_config(context=context)
    return ClusterSuite(
        client.CoreV1Api(api), client.AppsV1Api(api), portforward, namespace, release, workdir
    )
