"""Test helpers every package reuses: databases on both back ends, in-process servers.

Use from a conftest.py:

    from shop_grpc.testing import database_url  # noqa: F401  (a fixture)

``database_url`` runs a test once on a fresh SQLite file and once on a fresh
PostgreSQL database on the server named by SHOP_TEST_POSTGRES_URL; without
that variable the PostgreSQL run is skipped, with the reason shown.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from sqlalchemy.engine import make_url

from shop_grpc import certs
from shop_grpc.certs import CA_FILE, CERT_FILE, KEY_FILE, Authority
from shop_grpc.config import (
    LogSettings,
    ServerSettings,
    ShutdownSettings,
    TlsSettings,
    stop_timeout,
)
from shop_grpc.server import GrpcServer, Registration

POSTGRES_ENV = "SHOP_TEST_POSTGRES_URL"


@asynccontextmanager
async def postgres_database(server_url: str) -> AsyncIterator[str]:
    """A new empty database on `server_url`, dropped afterwards; yields its URL."""
    name = f"shop_test_{uuid.uuid4().hex[:12]}"
    admin = make_url(server_url).set(drivername="postgresql")
    dsn = admin.render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


def postgres_server_url() -> str:
    url = os.environ.get(POSTGRES_ENV, "")
    if not url:
        pytest.skip(f"{POSTGRES_ENV} is not set: PostgreSQL variant not run")
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    async with postgres_database(postgres_server_url()) as url:
        yield url


def id_for(name: str) -> str:
    """The lower-case UUID that stands for `name` in a test: the same name gives the same id.

    Ids the services issue are UUIDs (the ``server_id`` rule in shop/common/v1/rules.proto), so
    tests that make up ids use these rather than readable strings the API would refuse.
    """
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"shop-test:{name}"))


def test_settings(service: str, database_url: str, **overrides: object) -> ServerSettings:
    values: dict[str, object] = {
        "service": service,
        "listen_address": "127.0.0.1:0",
        "database_url": database_url,
        "instance_id": f"{service}-test",
        "shutdown": ShutdownSettings(grace_seconds=1.0),
        "log": LogSettings(format="console", level="warning"),
    }
    values.update(overrides)
    return ServerSettings(**values)  # type: ignore[arg-type]


@asynccontextmanager
async def serving(
    settings: ServerSettings, services: Sequence[Registration]
) -> AsyncIterator[grpc.aio.Channel]:
    """Runs a server on a free loopback port; yields a channel to it."""
    server = GrpcServer(settings, services)
    port = await server.start()
    await server.set_serving(True)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield channel
    finally:
        await channel.close()
        await server.stop(0)


test_settings.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


@dataclass(frozen=True)
class MtlsServing:
    """A running server with mTLS and its plaintext probe port, and the suite's certificates."""

    server: GrpcServer
    certs: Path
    """``<certs>/<identity>/`` for every identity, as `shop certs init` lays them out."""
    authority: Authority

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.port}"

    @property
    def probe_address(self) -> str:
        return f"127.0.0.1:{self.server.probe.port}"


@asynccontextmanager
async def serving_mtls(
    tmp_path: Path, service: str, services: Sequence[Registration] = (), namespace: str = "test"
) -> AsyncIterator[MtlsServing]:
    """Serves `services` as `service`'s identity on free loopback ports, SERVING, with a new
    CA and certificates under ``tmp_path/certs``; stops the server afterwards."""
    out = tmp_path / "certs"
    authority = certs.init(out, namespace)
    settings = test_settings(
        service,
        f"sqlite:///{tmp_path / 'unused.db'}",
        tls=TlsSettings(out / service),
        probe_address="127.0.0.1:0",
    )
    server = GrpcServer(settings, services)
    await server.start()
    await server.set_serving(True)
    try:
        yield MtlsServing(server, out, authority)
    finally:
        await server.stop(0)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_QUICK_RECONNECT = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 250),
]


class ServiceProcess:
    """``python -m <module>`` as an operator runs it, on a free loopback port.

    async with ServiceProcess("shop_user", tmp_path) as service:
        assert await service.health("shop.user.v1.UserService") == SERVING
        assert await service.terminate() == 0
    """

    def __init__(
        self,
        module: str,
        data_dir: Path,
        env: dict[str, str] | None = None,
        grace: float = 1.0,
        address: str | None = None,
        wait_serving: bool = True,
    ) -> None:
        """`address`: host:port to serve on (default a free port on 127.0.0.1).
        `wait_serving`: on entry, wait until the service is SERVING; False: only until its
        probe port answers (a service still waiting for its database, say)."""
        self.module = module
        self.address = address or f"127.0.0.1:{free_port()}"
        self.probe_address = f"127.0.0.1:{free_port()}"
        self.wait_serving = wait_serving
        self.env = {k: v for k, v in os.environ.items() if k != "SHOP_DATABASE_URL"}
        self.env.update(
            SHOP_LISTEN_ADDRESS=self.address,
            SHOP_DATA_DIR=str(data_dir),
            SHOP_SHUTDOWN_GRACE_SECONDS=str(grace),
            SHOP_LOG_FORMAT="json",
            # Plaintext on purpose: these tests are about the process, mTLS has its own.
            SHOP_INSECURE="1",
            SHOP_PROBE_ADDRESS=self.probe_address,
        )
        self.env.update(env or {})
        self._output = b""

    async def __aenter__(self) -> ServiceProcess:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            self.module,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        # Short reconnect backoff: the first attempts find nobody listening yet.
        self.channel = grpc.aio.insecure_channel(self.address, options=_QUICK_RECONNECT)
        self.probe_channel = grpc.aio.insecure_channel(self.probe_address, options=_QUICK_RECONNECT)
        try:
            await self._wait_started()
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    START_SECONDS = 20.0

    async def _wait_started(self) -> None:
        """Until the service is SERVING or, without `wait_serving`, its probe port answers."""
        async with asyncio.timeout(self.START_SECONDS):
            while True:
                if self.process.returncode is not None:
                    raise AssertionError(f"{self.module} exited early: {await self.output()}")
                with contextlib.suppress(grpc.aio.AioRpcError):
                    if not self.wait_serving:
                        await self.probe_health()
                        return
                    if await self.health("") == SERVING:
                        return
                await asyncio.sleep(0.1)

    async def health(self, service: str) -> int:
        """The status the main (gRPC) port gives `service`."""
        return await _check(self.channel, service)

    async def probe_health(self, service: str = "") -> int:
        """The status the plaintext probe port gives `service`, as the kubelet asks it."""
        return await _check(self.probe_channel, service)

    async def listed_services(self) -> set[str]:
        """What a reflection client (grpcurl list) sees."""
        stub = reflection_pb2_grpc.ServerReflectionStub(self.channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        async for reply in stub.ServerReflectionInfo(iter([request]), timeout=5):
            return {s.name for s in reply.list_services_response.service}
        return set()

    async def terminate(self) -> int:
        """SIGTERM, then the exit code; fails if the process outlives its shutdown budget."""
        self.process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(self.process.wait(), stop_timeout(self.env))
        return int(self.process.returncode or 0)

    async def output(self) -> str:
        """Everything the process wrote (stdout and stderr); returns once it has exited."""
        assert self.process.stdout is not None
        self._output += await self.process.stdout.read()
        return self._output.decode(errors="replace")

    async def __aexit__(self, *exc: object) -> None:
        await self.channel.close()
        await self.probe_channel.close()
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


SERVING = health_pb2.HealthCheckResponse.SERVING


async def _check(channel: grpc.aio.Channel, service: str) -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=1)
    return int(reply.status)


@dataclass(frozen=True)
class GrpcurlResult:
    returncode: int
    output: str
    """stdout and stderr, interleaved as grpcurl wrote them."""


@dataclass(frozen=True)
class Grpcurl:
    """The real grpcurl (a dev tool of the workspace) as one identity, against one server.

    grpcurl = Grpcurl("127.0.0.1:50051", certs / "client", "order")
    result = await grpcurl("describe", "shop.order.v1.OrderService.CreateOrder")
    assert result.returncode == 0, result.output
    """

    address: str
    identity: Path
    """A directory holding ca.crt, tls.crt and tls.key."""
    server_name: str
    """The name the server's certificate must carry (a service's bare name)."""

    @staticmethod
    def executable() -> Path:
        found = Path(sys.executable).with_name("grpcurl")
        if not found.exists():
            raise AssertionError(f"{found} missing: the workspace's dev tools are not installed")
        return found

    async def __call__(self, *args: str, flags: Sequence[str] = ()) -> GrpcurlResult:
        """``grpcurl <TLS flags> <flags> ADDRESS <args>``, e.g. ``("describe", "pkg.Svc")``
        or, with ``flags=["-d", "{}"]``, ``("pkg.Svc/Method",)``; fails after 20 s."""
        process = await asyncio.create_subprocess_exec(
            str(self.executable()),
            f"-cacert={self.identity / CA_FILE}",
            f"-cert={self.identity / CERT_FILE}",
            f"-key={self.identity / KEY_FILE}",
            f"-servername={self.server_name}",
            *flags,
            self.address,
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        # Awaited, never run blocking: the server under test may share this event loop.
        try:
            async with asyncio.timeout(20):
                output, _ = await process.communicate()
        except TimeoutError:
            process.kill()
            await process.wait()
            raise
        return GrpcurlResult(int(process.returncode or 0), output.decode(errors="replace"))
