"""The suite's services as child processes on one machine: what `shop up` and tests/e2e run.

    with Suite(tmp_path, base_port=find_free_base_port()) as suite:   # start + wait_ready
        order_target = suite.endpoints()["order"]
        suite.kill("payment"); suite.restart("payment"); suite.wait_ready(services=["payment"])
        suite.pause("order"); suite.resume("order")

The services are those installed (shop_grpc.registry), started each after the ones it calls.
Each child is ``python -m shop_<service>`` configured only through SHOP_*
variables, exactly as a deployment would configure it: mTLS with its own
identity from ``<data_dir>/certs/<service>`` (made on first start; ``client`` is
the `shop` commands' identity), the access token keys from ``<data_dir>/token-keys`` (a first
key made on first start: private keys for the service that signs, public ones for the others),
and a plaintext health-only probe port. Its stdout and stderr
go to ``<data_dir>/logs/<service>.log`` and, when ``echo`` is given, to that
stream prefixed with the service name. Its pid is published under ``<data_dir>/pids``
(shop_cli.pidfiles) while it runs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, TextIO

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shop_cli import pidfiles
from shop_grpc import certs, registry, tokens
from shop_grpc.config import stop_timeout

LOG_TAIL_LINES = 30
NAMESPACE = "local"
"""The namespace in the identities of a suite run here."""
# A channel that found nobody listening backs off for a second or more before it
# tries again; a service that is still starting should be seen as soon as it binds.
_READINESS_CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 250),
]

# Inherited values that would be wrong for a child: one database URL or one
# tracing service name cannot serve several services (each defaults to its own),
# and the suite sets addresses and targets itself.
_NOT_INHERITED = ("SHOP_DATABASE_URL", "OTEL_SERVICE_NAME")


class SuiteError(RuntimeError):
    """A service did not start, or died; the message names it and shows its log's tail."""


@dataclass
class _Child:
    process: subprocess.Popen[bytes]
    pump: threading.Thread


def default_program(service: str) -> list[str]:
    spec = registry.spec(service)
    return [sys.executable, "-m", spec.main_module if spec else f"shop_{service}"]


def default_base_port() -> int:
    """The lowest of the services' declared ports: where `shop up` starts by default, so each
    service listens on its own declared port."""
    return min(spec.default_port for spec in registry.services().values())


def port_offset(service: str) -> int:
    """Where `service` sits after the base port: its default port's distance from the lowest
    one, so `shop up --base-port N` keeps the services' order."""
    return registry.services()[service].default_port - default_base_port()


def address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


def find_free_base_port(
    host: str = "127.0.0.1", attempts: int = 50, count: int | None = None
) -> int:
    """A base port whose `count` ports are free right now (another process may still take them).

    The default leaves room for the services' ports and, after them, their probe and metrics
    ports.
    """
    count = 3 * _port_span() if count is None else count
    for _ in range(attempts):
        with socket.socket() as probe:
            probe.bind((host, 0))
            base = int(probe.getsockname()[1])
        if base + count < 65536 and all(_port_free(host, base + i) for i in range(count)):
            return base
    raise SuiteError(f"no {count} consecutive free ports found on {host}")


def _port_span() -> int:
    """How many ports the services' mTLS ports take from the base port on."""
    return max(port_offset(name) for name in registry.names()) + 1


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


class Suite:
    def __init__(
        self,
        data_dir: str | Path,
        *,
        host: str = "127.0.0.1",
        base_port: int | None = None,
        extra_env: Mapping[str, str] | None = None,
        service_env: Mapping[str, Mapping[str, str]] | None = None,
        echo: TextIO | None = None,
        log_format: str | None = None,
        program: Callable[[str], list[str]] | None = None,
        probe_base_port: int | None = None,
        metrics_base_port: int | None = None,
        insecure: bool = False,
        log_dir: str | Path | None = None,
    ) -> None:
        """
        extra_env: added to every child's environment, after the suite's own variables.
        service_env: per service, added last (e.g. {"order": {"SHOP_DATABASE_URL": ...}}).
        echo: where to copy child output, each line prefixed with the service name.
        log_format: SHOP_LOG_FORMAT for the children; default console when `echo`
            is a terminal, else json.
        program: the command line that runs a service (default ``python -m shop_<service>``).
        base_port: the first service's port, the others' keeping their declared distance from
            it (default: default_base_port(), each service on its declared port).
        probe_base_port: the first service's plaintext probe port, the others' following as
            their service ports do (default: right after the service ports).
        metrics_base_port: the first service's /metrics port, the others' following likewise
            (default: right after the probe ports).
        insecure: plaintext everywhere (SHOP_INSECURE=1), no certificates.
        log_dir: where the services' logs go (default <data_dir>/logs).
        """
        self.data_dir = Path(data_dir).resolve()
        self.host = host
        self.base_port = default_base_port() if base_port is None else base_port
        self.extra_env = dict(extra_env or {})
        self.service_env = {name: dict(env) for name, env in (service_env or {}).items()}
        self.echo = echo
        self.log_format = log_format or (
            "console" if echo is not None and echo.isatty() else "json"
        )
        self.program = program or default_program
        self.probe_base_port = (
            self.base_port + _port_span() if probe_base_port is None else probe_base_port
        )
        self.metrics_base_port = (
            self.probe_base_port + _port_span() if metrics_base_port is None else metrics_base_port
        )
        self.insecure = insecure
        self.log_dir = self.data_dir / "logs" if log_dir is None else Path(log_dir).resolve()
        self._children: dict[str, _Child] = {}
        self._echo_lock = threading.Lock()

    # -- where things are -------------------------------------------------

    def port(self, service: str) -> int:
        return self.base_port + port_offset(service)

    def endpoints(self) -> dict[str, str]:
        """gRPC address of each service, in the order of their declared ports."""
        return {name: address(self.host, self.port(name)) for name in registry.names()}

    def probe_endpoints(self) -> dict[str, str]:
        """Plaintext grpc.health.v1-only address of each service, in the order of their
        declared ports."""
        ports = {name: self.probe_base_port + port_offset(name) for name in registry.names()}
        return {name: address(self.host, port) for name, port in ports.items()}

    def metrics_endpoints(self) -> dict[str, str]:
        """Plaintext HTTP address of each service's /metrics, in the order of their declared
        ports."""
        ports = {name: self.metrics_base_port + port_offset(name) for name in registry.names()}
        return {name: address(self.host, port) for name, port in ports.items()}

    def instance(self, service: str) -> str:
        """The name of `service`'s process here: its SHOP_INSTANCE_ID and pid file name."""
        return pidfiles.instance_name(service, self.endpoints()[service])

    @property
    def certs_dir(self) -> Path:
        return self.data_dir / "certs"

    @property
    def token_keys_dir(self) -> Path:
        """``private/``: the signing keys, for the service that signs; ``public/``: the
        verifying keys, for the others (shop_grpc.tokens)."""
        return self.data_dir / "token-keys"

    def _token_keys(self, service: str) -> Path:
        signs = registry.services()[service].signs_tokens
        return self.token_keys_dir / ("private" if signs else "public")

    def _transport_env(self, service: str) -> dict[str, str]:
        if self.insecure:
            return {"SHOP_INSECURE": "1"}
        return {"SHOP_TLS_DIR": str(self.certs_dir / service), "SHOP_INSECURE": ""}

    def log_path(self, service: str) -> Path:
        return self.log_dir / f"{service}.log"

    def environment(self, service: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _NOT_INHERITED}
        endpoints = self.endpoints()
        env.update(
            SHOP_LISTEN_ADDRESS=endpoints[service],
            SHOP_DATA_DIR=str(self.data_dir),
            SHOP_INSTANCE_ID=self.instance(service),
            SHOP_LOG_FORMAT=self.log_format,
            SHOP_PROBE_ADDRESS=self.probe_endpoints()[service],
            SHOP_METRICS_ADDRESS=self.metrics_endpoints()[service],
            **self._transport_env(service),
            SHOP_TOKEN_KEYS_DIR=str(self._token_keys(service)),
            # Without it a child's log lines would reach the pipe in blocks, late.
            PYTHONUNBUFFERED="1",
        )
        for dependency in registry.services()[service].depends_on:
            env[f"SHOP_{dependency.upper()}_TARGET"] = endpoints[dependency]
        env.update(self.extra_env)
        env.update(self.service_env.get(service, {}))
        return env

    # -- life cycle --------------------------------------------------------

    def start(self) -> None:
        """Launches every service (dependencies first); returns without waiting for readiness."""
        if not self.insecure:
            certs.ensure(self.certs_dir, NAMESPACE)
        tokens.ensure_key(self.token_keys_dir / "private", self.token_keys_dir / "public")
        for service in registry.start_order():
            self._spawn(service)

    def _spawn(self, service: str) -> None:
        if self.running(service):
            raise SuiteError(f"{service} is already running")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        process = subprocess.Popen(
            self.program(service),
            env=self.environment(service),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            # Own process group: a terminal's Ctrl-C reaches only us, and we stop
            # the children in a controlled way instead of racing them.
            process_group=0,
        )
        assert process.stdout is not None
        pump = threading.Thread(
            target=self._pump, args=(service, process.stdout), name=f"log-{service}", daemon=True
        )
        pump.start()
        self._children[service] = _Child(process, pump)
        pidfiles.publish(self.data_dir, self.instance(service), process.pid)

    def _pump(self, service: str, stream: IO[bytes]) -> None:
        with stream, self.log_path(service).open("ab") as log:
            for line in stream:
                log.write(line)
                log.flush()
                if self.echo is not None:
                    text = line.decode("utf-8", "replace").rstrip("\n")
                    with self._echo_lock:
                        self.echo.write(f"{service:<9}| {text}\n")
                        self.echo.flush()

    def running(self, service: str) -> bool:
        child = self._children.get(service)
        return child is not None and child.process.poll() is None

    def exited(self) -> dict[str, int]:
        """Exit codes of the services that were started and are no longer running."""
        codes = {name: child.process.poll() for name, child in self._children.items()}
        return {name: code for name, code in codes.items() if code is not None}

    def wait_ready(self, timeout: float = 30.0, services: Iterable[str] | None = None) -> None:
        """Blocks until each service answers grpc.health.v1 Check with SERVING.

        Raises SuiteError naming the service, with the tail of its log, if it
        exits first or is not SERVING within `timeout` seconds overall.
        """
        deadline = time.monotonic() + timeout
        for service in services or registry.start_order():
            self._wait_serving(service, deadline, timeout)

    def _wait_serving(self, service: str, deadline: float, timeout: float) -> None:
        # The plaintext probe port shares the health servicer: no certificate needed to ask.
        target = self.probe_endpoints()[service]
        with grpc.insecure_channel(target, options=_READINESS_CHANNEL_OPTIONS) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            while True:
                code = self._returncode(service)
                if code is not None:
                    raise SuiteError(
                        self._failure(service, f"exited with code {code} before it was ready")
                    )
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise SuiteError(
                        self._failure(service, f"was not SERVING on {target} within {timeout:g} s")
                    )
                if _serving(health, min(1.0, remaining)):
                    return
                time.sleep(min(0.1, max(remaining, 0)))

    def _returncode(self, service: str) -> int | None:
        child = self._children.get(service)
        if child is None:
            raise SuiteError(f"{service} was never started")
        return child.process.poll()

    def _failure(self, service: str, what: str) -> str:
        child = self._children.get(service)
        if child is not None and child.process.poll() is not None:
            # The pump may still be copying the last lines the child wrote.
            child.pump.join(timeout=2)
        tail = self.log_tail(service)
        shown = "\n".join(f"    {line}" for line in tail) if tail else "    (no output)"
        return f"{service} {what}; last lines of {self.log_path(service)}:\n{shown}"

    def log_tail(self, service: str, lines: int = LOG_TAIL_LINES) -> list[str]:
        path = self.log_path(service)
        if not path.exists():
            return []
        return path.read_text("utf-8", "replace").splitlines()[-lines:]

    def stop_timeout(self, services: Iterable[str] | None = None) -> float:
        """How long stopping `services` (default all) may take: the longest shutdown budget
        their environments give them (SHOP_SHUTDOWN_*), plus the interpreter's exit."""
        return max(stop_timeout(self.environment(name)) for name in services or registry.names())

    def stop(self, timeout: float | None = None) -> dict[str, int]:
        """SIGTERM to every running service, SIGKILL to those still up after `timeout`
        (default: their shutdown budget, ``stop_timeout()``).

        Returns each started service's exit code (negative: killed by that signal).
        """
        for child in self._children.values():
            _send(child.process, signal.SIGTERM)
        deadline = time.monotonic() + (self.stop_timeout() if timeout is None else timeout)
        for child in self._children.values():
            _wait_or_kill(child.process, deadline)
        codes = {name: self._reap(name) for name in list(self._children)}
        return codes

    def kill(self, service: str) -> int:
        """SIGKILL one service, as a crash would; returns its exit code."""
        child = self._children[service]
        _send(child.process, signal.SIGKILL)
        return self._reap(service)

    def pause(self, service: str) -> None:
        """SIGSTOP one service: to its peers it looks as a process in a long stall does (a
        frozen VM, a runaway pause), alive but silent."""
        _send(self._children[service].process, signal.SIGSTOP)

    def resume(self, service: str) -> None:
        """SIGCONT a paused service."""
        _send(self._children[service].process, signal.SIGCONT)

    def restart(self, service: str, timeout: float | None = None) -> None:
        """Stops `service` if it still runs (SIGTERM, then SIGKILL after `timeout`, default
        its shutdown budget) and launches it again.

        Returns once launched; call ``wait_ready(services=[service])`` to wait for it.
        """
        child = self._children.get(service)
        if child is not None:
            _send(child.process, signal.SIGTERM)
            waited = self.stop_timeout([service]) if timeout is None else timeout
            _wait_or_kill(child.process, time.monotonic() + waited)
            self._reap(service)
        self._spawn(service)

    def _reap(self, service: str) -> int:
        child = self._children[service]
        code = child.process.wait()
        pidfiles.withdraw(self.data_dir, self.instance(service))
        child.pump.join(timeout=5)
        return code

    def __enter__(self) -> Suite:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _serving(health: health_pb2_grpc.HealthStub, timeout: float) -> bool:
    try:
        response = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout)
    except grpc.RpcError:
        return False
    return bool(response.status == health_pb2.HealthCheckResponse.SERVING)


def _send(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)


def _wait_or_kill(process: subprocess.Popen[bytes], deadline: float) -> None:
    try:
        process.wait(timeout=max(deadline - time.monotonic(), 0))
    except subprocess.TimeoutExpired:
        _send(process, signal.SIGKILL)
        process.wait()
