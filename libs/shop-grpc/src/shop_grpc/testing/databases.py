"""Databases for tests, on both back ends.

``database_url`` (a fixture) runs a test once on a fresh SQLite file and once on a fresh
PostgreSQL database on the server named by SHOP_TEST_POSTGRES_URL; without that variable the
PostgreSQL run is skipped, with the reason shown. ``db`` (a fixture) is that database opened
as a ``storage.Database``, its tables already made from the ``db_metadata`` fixture, which the
package's conftest.py defines. A conftest.py takes fixtures in by importing them:

    from shop_grpc.testing import database_url, db  # noqa: F401  (fixtures)
    from shop_user.adapters.orm import metadata

    @pytest.fixture
    def db_metadata() -> MetaData:
        return metadata
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import MetaData
from sqlalchemy.engine import make_url

from shop_grpc.storage import Database

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


ENGINES = ("sqlite", "postgresql")


@asynccontextmanager
async def fresh_database_url(engine: str, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of a new, empty database of `engine` (one of ENGINES).

    ``sqlite``: ``sqlite:///<tmp_path>/test.db``. ``postgresql``: a database made on the
    server of SHOP_TEST_POSTGRES_URL and dropped afterwards; the calling test is skipped,
    saying why, when that variable is unset. ValueError for another engine.
    """
    if engine == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
    elif engine == "postgresql":
        async with postgres_database(postgres_server_url()) as url:
            yield url
    else:
        raise ValueError(f"no test database of engine {engine!r}: one of {ENGINES}")


@pytest.fixture(params=ENGINES)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh database's URL: the test runs once per engine (see ``fresh_database_url``)."""
    async with fresh_database_url(request.param, tmp_path) as url:
        yield url


@asynccontextmanager
async def migrated_database(url: str, metadata: MetaData) -> AsyncIterator[Database]:
    """A ``storage.Database`` on `url` with the tables of `metadata` (and the runtime's own)
    made, as a service's start makes them; disposed of afterwards.

    Raises what ``Database.migrate`` raises: SQLAlchemy's errors when the database cannot be
    reached or a table cannot be made.
    """
    db = Database(url)
    try:
        await db.migrate(metadata)
        yield db
    finally:
        await db.dispose()


@pytest.fixture
async def db(database_url: str, db_metadata: MetaData) -> AsyncIterator[Database]:
    """The database of `database_url`, migrated to `db_metadata`: a fixture the conftest.py
    that imports this one defines (its service's ``adapters.orm.metadata``)."""
    async with migrated_database(database_url, db_metadata) as database:
        yield database
