"""Servers inside the test's own event loop: plaintext, or with mTLS and a probe port."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc

from shop_grpc.certs import Authority
from shop_grpc.config import LogSettings, ServerSettings, ShutdownSettings, TokenSettings
from shop_grpc.server import GrpcServer, Registration
from shop_grpc.testing.certificates import issue_certificates


def test_settings(service: str, database_url: str, **overrides: object) -> ServerSettings:
    """`service`'s settings for a test: a free loopback port, a one-second grace, quiet logs.

    `overrides` replace any ServerSettings field by name; a name it lacks raises TypeError.
    """
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


test_settings.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


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
    tmp_path: Path,
    service: str,
    services: Sequence[Registration] = (),
    namespace: str = "test",
    tokens: TokenSettings | None = None,
) -> AsyncIterator[MtlsServing]:
    """Serves `services` as `service`'s identity on free loopback ports, SERVING, with a new
    CA and certificates under ``tmp_path/certs`` and the access token keys `tokens` names;
    stops the server afterwards."""
    certificates = issue_certificates(tmp_path / "certs", namespace)
    settings = test_settings(
        service,
        f"sqlite:///{tmp_path / 'unused.db'}",
        tls=certificates.tls(service),
        probe_address="127.0.0.1:0",
        tokens=tokens or TokenSettings(),
    )
    server = GrpcServer(settings, services)
    await server.start()
    await server.set_serving(True)
    try:
        yield MtlsServing(server, certificates.directory, certificates.authority)
    finally:
        await server.stop(0)
