"""Databases for tests, on both back ends.

``database_url`` (a fixture) runs a test once on a fresh SQLite file and once on a fresh
PostgreSQL database on the server named by SHOP_TEST_POSTGRES_URL; without that variable the
PostgreSQL run is skipped, with the reason shown. A conftest.py takes it in by importing it:

    from shop_grpc.testing import database_url  # noqa: F401  (a fixture)
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

POSTGRES_ENV = "SHOP_TEST_POSTGRES_URL"


@asynccontextmanager
async def postgres_database(server_url: str) -> AsyncIterator[str]:
    """A new empty database on `server_url`, dropped afterwards; yields its URL.

    Raises what asyncpg raises when the server cannot be reached or refuses the user.
    """
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
    """The server of SHOP_TEST_POSTGRES_URL; skips the calling test, saying so, when unset."""
    url = os.environ.get(POSTGRES_ENV, "")
    if not url:
        pytest.skip(f"{POSTGRES_ENV} is not set: PostgreSQL variant not run")
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """``sqlite:///<tmp_path>/test.db``, then a fresh PostgreSQL database's URL (or a skip)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    async with postgres_database(postgres_server_url()) as url:
        yield url
