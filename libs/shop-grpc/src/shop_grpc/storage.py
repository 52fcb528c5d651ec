"""One storage layer for both back ends: SQLite files on a laptop, PostgreSQL in a cluster.

SQLite allows one writer at a time. Transactions there start with
``BEGIN IMMEDIATE`` (take the write lock up front, so two transactions never
deadlock upgrading a read lock) and are serialized inside the process by an
asyncio lock, so writers queue in the event loop instead of spinning in
SQLite's busy handler. Read-only work takes neither: in WAL mode a reader sees
a consistent snapshot while a writer commits. PostgreSQL gets row locks and
conditional updates from the repositories instead.

Idempotency keys are unique constraints. When two transactions race on one key, the
loser's write fails; ``UnitOfWork`` reports that as ``DuplicateKey`` (and
``insert_once`` as ``False``, keeping the transaction usable), so use cases read the
winner's row without ever seeing a driver's error.

A service starts before its database may answer (a PostgreSQL pod still starting,
a network not yet there): ``migrate_when_reachable`` tries again and again, with
capped exponential backoff, saying each time why, but never the password.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
import zlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar

import structlog
from sqlalchemy import Column, DateTime, LargeBinary, MetaData, String, Table, event, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.sql import Executable
from sqlalchemy.types import TypeDecorator

from shop_grpc import telemetry

log = structlog.get_logger("shop_grpc.storage")

SQLITE_BUSY_TIMEOUT_MS = 30_000
CONNECT_TIMEOUT_SECONDS = 10.0
"""How long one attempt to connect to PostgreSQL may take (the driver's own default is 60 s),
so that an unreachable server is retried, and reported, every few seconds."""
RETRY_INITIAL_SECONDS = 0.25
RETRY_MAX_SECONDS = 5.0
"""Waits between attempts to reach the database at start: doubling from the first to the
second, each drawn from its upper half so that replicas starting together spread out."""

# The runtime's own table in every service's database: keys that every replica of the
# service must share (they all use the same database) and that outlive restarts.
_runtime = MetaData()
_secrets = Table(
    "shop_secrets",
    _runtime,
    Column("name", String(64), primary_key=True),
    Column("value", LargeBinary, nullable=False),
)


def async_url(url: str) -> str:
    """Accepts plain postgresql:// and sqlite:// URLs and picks the async driver."""
    parsed = make_url(url)
    driver = {"postgresql": "postgresql+asyncpg", "sqlite": "sqlite+aiosqlite"}.get(
        parsed.drivername
    )
    return parsed.set(drivername=driver).render_as_string(hide_password=False) if driver else url


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both back ends (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Database:
    """An engine, its session factory and, on SQLite, the in-process write lock."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = async_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        if self.is_sqlite:
            self.engine = _sqlite_engine(self.url, writer=True)
            in_memory = make_url(self.url).database in (None, "", ":memory:")
            # Each connection to an in-memory database is a database of its own.
            self._read_engine = self.engine if in_memory else _sqlite_engine(self.url, writer=False)
        else:
            self.engine = self._read_engine = create_async_engine(
                self.url,
                pool_size=pool_size,
                max_overflow=pool_size,
                pool_pre_ping=True,
                connect_args={"timeout": CONNECT_TIMEOUT_SECONDS},
            )
        telemetry.trace_engine(self.engine)
        if self._read_engine is not self.engine:
            telemetry.trace_engine(self._read_engine)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = async_sessionmaker(self._read_engine, expire_on_commit=False)
        self._sqlite_lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def session(self, *, readonly: bool = False) -> AsyncIterator[AsyncSession]:
        """A session; on SQLite, writing ones are serialized and read-only ones are not."""
        if readonly:
            async with self._read_sessions() as session:
                yield session
            return
        lock = self._sqlite_lock if self.is_sqlite else contextlib.nullcontext()
        async with lock, self.sessions() as session:
            yield session

    async def migrate(self, metadata: MetaData) -> None:
        """Creates missing tables (the service's and the runtime's); safe when several
        replicas start at once."""
        async with self.engine.begin() as conn:
            if not self.is_sqlite:
                # Serialize concurrent start-ups: CREATE TABLE IF NOT EXISTS still races.
                key = zlib.crc32(",".join(sorted(metadata.tables)).encode())
                await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
            await conn.run_sync(_runtime.create_all)
            await conn.run_sync(metadata.create_all)

    async def migrate_when_reachable(self, metadata: MetaData) -> None:
        """migrate(), tried again until the database answers and it succeeds.

        Any error counts as the database not being ready yet: a server still starting, a
        user or database not made yet, a network not yet there. Each is logged, with the
        URL and the reason but without the password, and tried again after a wait that
        doubles up to RETRY_MAX_SECONDS. Cancelling (a SIGTERM meanwhile) ends it at once.
        """
        ceiling = RETRY_INITIAL_SECONDS
        while True:
            try:
                await self.migrate(metadata)
            except (OSError, SQLAlchemyError) as error:
                wait = random.uniform(ceiling / 2, ceiling)
                log.warning(
                    "database not ready; trying again",
                    database=self.shown_url,
                    reason=self._reason(error),
                    retry_in_seconds=round(wait, 2),
                )
                await asyncio.sleep(wait)
                ceiling = min(ceiling * 2, RETRY_MAX_SECONDS)
            else:
                log.info("database ready", database=self.shown_url)
                return

    @property
    def shown_url(self) -> str:
        """The URL as logs may show it: the password masked."""
        return make_url(self.url).render_as_string(hide_password=True)

    def _reason(self, error: Exception) -> str:
        # The driver's own error, without SQLAlchemy's wrapping (and its link to the docs) or
        # the DBAPI adapter's around asyncpg: "InvalidCatalogNameError: database ... does not
        # exist" says more than "Error: ...".
        cause = getattr(error, "orig", None) or error
        cause = cause.__cause__ or cause
        reason = f"{type(cause).__name__}: {cause}".strip()
        password = make_url(self.url).password
        return reason.replace(str(password), "***") if password else reason

    async def secret(self, name: str, size: int = 32) -> bytes:
        """A random key of `size` bytes, made once per database and shared by every replica.

        The first caller to ask stores it; a concurrent first caller loses the insert and
        reads the winner's key. Needs ``migrate()`` first.
        """
        dialect = sqlite if self.is_sqlite else postgresql
        insert = (
            dialect.insert(_secrets)
            .values(name=name, value=secrets.token_bytes(size))
            .on_conflict_do_nothing(index_elements=["name"])
        )
        async with self.session() as session:
            await session.execute(insert)
            await session.commit()
            value = await session.scalar(select(_secrets.c.value).where(_secrets.c.name == name))
        assert value is not None
        return bytes(value)

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._read_engine is not self.engine:
            await self._read_engine.dispose()


def _sqlite_engine(url: str, *, writer: bool) -> AsyncEngine:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")

    return engine


class DuplicateKey(Exception):
    """A write broke a unique key that a concurrent transaction stored first.

    Raised on leaving the ``UnitOfWork`` whose write failed (its transaction is rolled back):
    the use case reads what the winner wrote in a new one. It never reaches a caller.
    """


async def insert_once(session: AsyncSession, statement: Executable) -> bool:
    """Runs an INSERT; False, and nothing written, if a row with its unique key exists.

    The insert runs in a savepoint: on PostgreSQL a failed statement would otherwise abort
    the whole transaction, and the caller still needs it to read the winner's row.
    """
    try:
        async with session.begin_nested():
            await session.execute(statement)
    except IntegrityError:
        return False
    return True


class Transaction(Protocol):
    """What use cases see of a unit of work; services extend it with their repositories.

    async with uow:
        ...
        await uow.commit()      # leaving without commit() rolls back

    A write that loses a race for a unique key raises DuplicateKey on leaving.
    """

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None: ...


TransactionT_co = TypeVar("TransactionT_co", bound=Transaction, covariant=True)


class TransactionFactory(Protocol[TransactionT_co]):
    """How use cases open a unit of work. A read-only one never writes: on SQLite it reads a
    snapshot beside the writer instead of queueing for the write lock."""

    def __call__(self, *, readonly: bool = False) -> TransactionT_co: ...


class UnitOfWork:
    """One transaction; services subclass it to add their repositories.

    async with uow:
        ...
        await uow.commit()      # anything not committed is rolled back
    """

    session: AsyncSession

    def __init__(self, db: Database, *, readonly: bool = False) -> None:
        self.db = db
        self.readonly = readonly
        self._scope: contextlib.AbstractAsyncContextManager[AsyncSession] | None = None

    async def __aenter__(self) -> Self:
        self._scope = self.db.session(readonly=self.readonly)
        self.session = await self._scope.__aenter__()
        self.bind(self.session)
        return self

    def bind(self, session: AsyncSession) -> None:
        """Subclasses create their repositories on `session` here."""

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._scope is not None
        try:
            await self.session.rollback()
        finally:
            await self._scope.__aexit__(exc_type, exc, tb)
        # Checks made before a write cannot see a concurrent transaction's uncommitted row;
        # the unique constraint does, and fails the write.
        if isinstance(exc, IntegrityError):
            raise DuplicateKey(str(exc.orig)) from exc

    async def commit(self) -> None:
        await self.session.commit()

    @property
    def is_postgres(self) -> bool:
        return not self.db.is_sqlite
