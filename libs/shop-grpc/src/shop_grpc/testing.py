"""Test helpers every package reuses: databases on both back ends, in-process servers.

Use from a conftest.py:

    from shop_grpc.testing import database_url  # noqa: F401  (a fixture)

``database_url`` runs a test once on a fresh SQLite file and once on a fresh
PostgreSQL database on the server named by SHOP_TEST_POSTGRES_URL; without
that variable the PostgreSQL run is skipped, with the reason shown.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import grpc
import pytest
from sqlalchemy.engine import make_url

from shop_grpc.config import LogSettings, ServerSettings
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


def test_settings(service: str, database_url: str, **overrides: object) -> ServerSettings:
    values: dict[str, object] = {
        "service": service,
        "listen_address": "127.0.0.1:0",
        "database_url": database_url,
        "instance_id": f"{service}-test",
        "shutdown_grace_seconds": 1.0,
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
