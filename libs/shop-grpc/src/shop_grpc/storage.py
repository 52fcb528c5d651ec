"""One storage layer for both back ends: SQLite files on a laptop, PostgreSQL in a cluster.

SQLite allows one writer at a time. Transactions there start with
``BEGIN IMMEDIATE`` (take the write lock up front, so two transactions never
deadlock upgrading a read lock) and are serialized inside the process by an
asyncio lock, so writers queue in the event loop instead of spinning in
SQLite's busy handler. Read-only work takes neither: in WAL mode a reader sees
a consistent snapshot while a writer commits. PostgreSQL gets row locks and
conditional updates from the repositories instead.

SQLite runs in the event loop's own thread, through the standard library's
driver. A statement on a local WAL database takes tens of microseconds and
never waits for a lock once ``BEGIN IMMEDIATE`` holds the write lock (a commit
in WAL mode with ``synchronous=NORMAL`` does not sync the disk), which is less
than handing it to a worker thread and back costs. The one wait left, another
process's writer holding the lock, is never spent in the loop: writers' BEGIN
fails at once when the lock is taken and is tried again after an asyncio sleep.
PostgreSQL goes through asyncpg, natively asynchronous.

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
import functools
import random
import secrets
import sqlite3
import time
import zlib
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Self, TypeVar, cast

import structlog
from sqlalchemy import (
    Column,
    DateTime,
    LargeBinary,
    MetaData,
    String,
    Table,
    create_engine,
    event,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import (
    Connection,
    CursorResult,
    Dialect,
    Engine,
    Result,
    ScalarResult,
    make_url,
)
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.pool import QueuePool, StaticPool
from sqlalchemy.sql import Executable
from sqlalchemy.types import TypeDecorator

from shop_grpc import telemetry
from shop_grpc.errors import Unavailable
from shop_grpc.metrics.database import COMMITTED, FAILED, ROLLED_BACK, transaction_ended

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

log = structlog.get_logger("shop_grpc.storage")

SQLITE_BUSY_TIMEOUT_MS = 30_000
"""How long a transaction waits for another process's writer before giving up."""
SQLITE_BUSY_RETRY_SECONDS = (0.001, 0.05)
"""The first and the longest wait between tries to take SQLite's write lock."""
SQLITE_IDLE_CONNECTIONS = 8
"""SQLite connections kept open per engine; more are opened when needed, never waited for
(a wait for a connection would block the event loop that is to give one back)."""
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


def driver_url(url: str) -> str:
    """Accepts plain postgresql:// and sqlite:// URLs and picks the driver: asyncpg for
    PostgreSQL, the standard library's sqlite3 for SQLite."""
    parsed = make_url(url)
    driver = {"postgresql": "postgresql+asyncpg", "sqlite": "sqlite+pysqlite"}.get(
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


Parameters = Mapping[str, Any] | Sequence[Mapping[str, Any]] | None
"""A statement's bound values: one set, or one per row (an executemany)."""


class Session(Protocol):
    """One transaction on one connection: what repositories run statements on.

    Results come back whole (rows are read before the next await). Nothing is written until
    ``commit()``; the unit of work rolls back whatever was not committed.
    """

    async def execute(
        self, statement: Executable, parameters: Parameters = None
    ) -> Result[Any]: ...

    async def scalar(
        self, statement: Executable, parameters: Mapping[str, Any] | None = None
    ) -> Any: ...

    async def scalars(
        self, statement: Executable, parameters: Mapping[str, Any] | None = None
    ) -> ScalarResult[Any]: ...

    @property
    def dialect(self) -> Dialect: ...

    async def commit(self) -> None: ...

    async def rollback(self) -> None: ...


class _SqliteSession:
    """A ``Session`` on a synchronous SQLite connection, run in the event loop's thread."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    async def execute(self, statement: Executable, parameters: Parameters = None) -> Result[Any]:
        return self.connection.execute(statement, parameters)

    async def scalar(
        self, statement: Executable, parameters: Mapping[str, Any] | None = None
    ) -> Any:
        return self.connection.scalar(statement, parameters)

    async def scalars(
        self, statement: Executable, parameters: Mapping[str, Any] | None = None
    ) -> ScalarResult[Any]:
        return self.connection.scalars(statement, parameters)

    @property
    def dialect(self) -> Dialect:
        return self.connection.dialect

    async def commit(self) -> None:
        self.connection.commit()

    async def rollback(self) -> None:
        self.connection.rollback()


class Database:
    """The engines (on SQLite a writer's and a readers'), and on SQLite the in-process write
    lock."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = driver_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        self._sqlite_lock = asyncio.Lock()
        if self.is_sqlite:
            in_memory = make_url(self.url).database in (None, "", ":memory:")
            self._writer = _sqlite_engine(self.url, writer=True, in_memory=in_memory)
            # Each connection to an in-memory database is a database of its own: readers and
            # writers share the one connection, and so the lock.
            self._reader = self._writer if in_memory else _sqlite_engine(self.url, writer=False)
            self._readers_lock = in_memory
            telemetry.trace_engine(self._writer)
            if self._reader is not self._writer:
                telemetry.trace_engine(self._reader)
        else:
            # Imported here: SQLAlchemy's asyncio layer (and the ORM it loads) costs a SQLite
            # process memory for nothing.
            from sqlalchemy.ext.asyncio import create_async_engine

            self.engine: AsyncEngine = create_async_engine(
                self.url,
                pool_size=pool_size,
                max_overflow=pool_size,
                # No ping before each transaction: asyncpg's takes three round trips, for every
                # transaction, to catch what a lost connection's first statement reports anyway
                # (session() answers it with Unavailable, and the pool drops every connection
                # of that age, so the caller's retry finds a fresh one).
                connect_args={"timeout": CONNECT_TIMEOUT_SECONDS},
            )
            telemetry.trace_engine(self.engine.sync_engine)
            # Read-only work runs each statement on its own, without BEGIN and ROLLBACK: two
            # round trips fewer, and the same view of the data, since at PostgreSQL's READ
            # COMMITTED level every statement of a transaction takes a new snapshot anyway.
            self._statement_engine: AsyncEngine = self.engine.execution_options(
                isolation_level="AUTOCOMMIT"
            )

    @contextlib.asynccontextmanager
    async def session(self, *, readonly: bool = False) -> AsyncIterator[Session]:
        """A transaction, rolled back on leaving unless committed; on SQLite, writing ones
        are serialized and read-only ones are not. On PostgreSQL a read-only one is no
        transaction: its statements see what was committed when each began."""
        if not self.is_sqlite:
            try:
                pool = self._statement_engine if readonly else self.engine
                async with pool.connect() as connection:
                    if not readonly:
                        await connection.begin()
                    yield connection
            except DBAPIError as error:
                if not error.connection_invalidated:
                    raise
                # The server restarted, failed over or dropped the connection: nothing of
                # this transaction was committed, and a retry gets a new connection.
                raise Unavailable("the database connection was lost; try again") from error
            return
        locked = not readonly or self._readers_lock
        async with self._sqlite_lock if locked else contextlib.nullcontext():
            engine = self._reader if readonly else self._writer
            # Closing the connection rolls back whatever was not committed.
            with await _begin_sqlite(engine) as connection:
                yield _SqliteSession(connection)

    async def migrate(self, metadata: MetaData) -> None:
        """Creates missing tables (the service's and the runtime's); safe when several
        replicas start at once."""
        if self.is_sqlite:
            async with self.session() as session:
                assert isinstance(session, _SqliteSession)
                _runtime.create_all(session.connection)
                metadata.create_all(session.connection)
                await session.commit()
            return
        async with self.engine.begin() as conn:
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
        if not self.is_sqlite:
            await self.engine.dispose()
            return
        self._writer.dispose()
        if self._reader is not self._writer:
            self._reader.dispose()


def _sqlite_engine(url: str, *, writer: bool, in_memory: bool = False) -> Engine:
    database = make_url(url).database
    if not in_memory and database:
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        # One thread uses them all (the event loop's), but the pool may close one elsewhere.
        connect_args={"check_same_thread": False},
        **(
            {"poolclass": StaticPool}
            if in_memory
            else {
                "poolclass": QueuePool,
                "pool_size": SQLITE_IDLE_CONNECTIONS,
                "max_overflow": -1,
            }
        ),
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # A writer never waits for the lock inside SQLite, which would stop the event loop:
        # _begin_sqlite waits between tries instead. Readers do not wait in WAL mode.
        cursor.execute(f"PRAGMA busy_timeout={0 if writer else SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    begin = "BEGIN IMMEDIATE" if writer else "BEGIN"

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Straight to the driver: through SQLAlchemy's execution path, the BEGIN cost as much
        # as the statement it was for.
        conn.connection.driver_connection.execute(begin)  # type: ignore[union-attr]

    return engine


def _is_busy(error: Exception) -> bool:
    """SQLITE_BUSY, from the driver or wrapped by SQLAlchemy."""
    message = str(getattr(error, "orig", None) or error)
    return "database is locked" in message or "database is busy" in message


async def _begin_sqlite(engine: Engine) -> Connection:
    """A connection in a new transaction. While another process's writer holds the write lock,
    waits in asyncio between tries (doubling, capped), up to SQLITE_BUSY_TIMEOUT_MS; then the
    driver's OperationalError."""
    loop = asyncio.get_running_loop()
    give_up_at = loop.time() + SQLITE_BUSY_TIMEOUT_MS / 1000
    wait, longest = SQLITE_BUSY_RETRY_SECONDS
    while True:
        connection = engine.connect()
        try:
            connection.begin()
        # The BEGIN goes straight to the driver (see _on_begin): its error comes unwrapped.
        except (OperationalError, sqlite3.OperationalError) as error:
            connection.close()
            if not _is_busy(error) or loop.time() >= give_up_at:
                if isinstance(error, OperationalError):
                    raise
                raise OperationalError("BEGIN", None, error) from error
        except BaseException:
            connection.close()
            raise
        else:
            return connection
        await asyncio.sleep(wait)
        wait = min(wait * 2, longest)


UNIQUE_VIOLATION = "23505"
"""PostgreSQL's SQLSTATE for a broken unique key or primary key."""
_SQLITE_UNIQUE_VIOLATIONS = frozenset({"SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"})


def _is_unique_violation(error: IntegrityError) -> bool:
    driver_error = error.orig
    if isinstance(driver_error, sqlite3.IntegrityError):
        return driver_error.sqlite_errorname in _SQLITE_UNIQUE_VIOLATIONS
    return getattr(driver_error, "sqlstate", None) == UNIQUE_VIOLATION


class DuplicateKey(Exception):
    """A write broke a unique key that a concurrent transaction stored first.

    Raised on leaving the ``UnitOfWork`` whose write failed (its transaction is rolled back):
    the use case reads what the winner wrote in a new one. It never reaches a caller.
    """


async def insert_once(session: Session, table: Table, row: Mapping[str, Any]) -> bool:
    """Inserts `row` into `table`; False, and nothing written, if a row with one of its
    unique keys exists.

    ``INSERT ... ON CONFLICT DO NOTHING`` (both engines): no error, so the transaction goes
    on to read the winner's row, where a failed statement would abort it on PostgreSQL; and
    no savepoint around it, two round trips fewer. A concurrent transaction's uncommitted
    row with the same key makes the insert wait for its outcome, as a unique violation
    would. Other constraints (NOT NULL, foreign keys) still raise.
    """
    statement = _insert_ignoring_conflicts(session.dialect.name, table)
    result = await session.execute(statement, dict(row))
    # An INSERT's result is a CursorResult, which counts the rows it wrote.
    return cast("CursorResult[Any]", result).rowcount == 1


@functools.cache
def _insert_ignoring_conflicts(dialect_name: str, table: Table) -> Executable:
    """Built once per table (the table itself, not its name: two services' tables may share
    a name in one process), so SQLAlchemy finds it compiled in its cache."""
    if dialect_name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


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

    session: Session

    def __init__(self, db: Database, *, readonly: bool = False) -> None:
        self.db = db
        self.readonly = readonly
        self._scope: contextlib.AbstractAsyncContextManager[Session] | None = None
        self._began = 0.0
        self._committed = False

    async def __aenter__(self) -> Self:
        self._scope = self.db.session(readonly=self.readonly)
        self.session = await self._scope.__aenter__()
        self._began = time.perf_counter()
        self._committed = False
        self.bind(self.session)
        return self

    def bind(self, session: Session) -> None:
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
            # Committed, then raised (a use case that records a change, then refuses): the
            # transaction itself committed.
            outcome = COMMITTED if self._committed else FAILED if exc is not None else ROLLED_BACK
            transaction_ended(readonly=self.readonly, outcome=outcome, began=self._began)
        # Checks made before a write cannot see a concurrent transaction's uncommitted row;
        # the unique constraint does, and fails the write. Other constraints (NOT NULL, a
        # foreign key) are a defect, and stay what they are.
        if isinstance(exc, IntegrityError) and _is_unique_violation(exc):
            raise DuplicateKey(str(exc.orig)) from exc

    async def commit(self) -> None:
        await self.session.commit()
        self._committed = True

    @property
    def is_postgres(self) -> bool:
        return not self.db.is_sqlite
