"""storage: what a unit of work promises, on SQLite, on PostgreSQL and in the kit's fake; then
what only the SQL side does (insert_once, migrations, the shared key, UTC times, waiting for a
database that is not there yet)."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from functools import partial

import asyncpg
import pytest
import structlog
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from shop_grpc import storage
from shop_grpc.errors import Unavailable
from shop_grpc.pagination import PageTokens
from shop_grpc.storage import (
    Database,
    DuplicateKey,
    UnitOfWork,
    UtcDateTime,
    driver_url,
    insert_once,
)
from shop_grpc.testing import (
    ENGINES,
    FakeDatabase,
    FakeUnitOfWork,
    UniqueViolation,
    free_port,
    fresh_database_url,
    migrated_database,
    postgres_server_url,
)

# --- one set of promises, three implementations -------------------------------------------


class SqlKeys:
    def __init__(self, session, table: Table) -> None:
        self.session = session
        self.table = table

    async def add(self, key: str) -> None:
        await self.session.execute(insert(self.table).values(key=key))

    async def all(self) -> set[str]:
        return set(await self.session.scalars(select(self.table.c.key)))


class SqlUnitOfWork(UnitOfWork):
    def __init__(self, db: Database, table: Table, *, readonly: bool = False) -> None:
        super().__init__(db, readonly=readonly)
        self.table = table

    def bind(self, session) -> None:
        self.keys = SqlKeys(session, self.table)


class FakeKeys:
    def __init__(self, rows: set[str]) -> None:
        self.rows = rows

    async def add(self, key: str) -> None:
        if key in self.rows:
            raise UniqueViolation("keys.key")
        self.rows.add(key)

    async def all(self) -> set[str]:
        return set(self.rows)


class FakeKeysUnitOfWork(FakeUnitOfWork[set[str]]):
    def bind(self, state: set[str]) -> None:
        self.keys = FakeKeys(state)


@pytest.fixture(params=[*ENGINES, "fake"])
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def uow(engine: str, keys: Table, tmp_path) -> AsyncIterator[object]:
    """A factory of units of work over one table of unique keys."""
    if engine == "fake":
        yield partial(FakeKeysUnitOfWork, FakeDatabase(set()))
        return
    async with (
        fresh_database_url(engine, tmp_path) as url,
        migrated_database(url, keys.metadata) as db,
    ):
        yield partial(SqlUnitOfWork, db, keys)


async def committed(uow) -> set[str]:
    async with uow(readonly=True) as tx:
        return await tx.keys.all()


async def write(uow, *written: str, commit: bool = True) -> None:
    async with uow() as tx:
        for key in written:
            await tx.keys.add(key)
        if commit:
            await tx.commit()


async def test_committed_work_is_what_the_next_unit_of_work_sees(uow):
    await write(uow, "a", "b")

    assert await committed(uow) == {"a", "b"}


async def test_leaving_without_commit_discards_the_work(uow):
    await write(uow, "a")
    await write(uow, "b", commit=False)

    assert await committed(uow) == {"a"}


async def write_then_fail(uow) -> None:
    async with uow() as tx:
        await tx.keys.add("a")
        raise LookupError("not a key's")


async def test_an_error_in_the_block_discards_the_work_and_reaches_the_caller_unchanged(uow):
    with pytest.raises(LookupError, match="not a key's"):
        await write_then_fail(uow)

    assert await committed(uow) == set()


async def test_work_after_a_commit_is_discarded_unless_committed_again(uow):
    async with uow() as tx:
        await tx.keys.add("a")
        await tx.commit()
        await tx.keys.add("b")
    async with uow() as tx:
        await tx.keys.add("c")
        await tx.commit()
        await tx.keys.add("d")
        await tx.commit()

    assert await committed(uow) == {"a", "c", "d"}


async def test_a_write_that_breaks_a_unique_key_is_duplicate_key_and_undoes_the_transaction(uow):
    await write(uow, "a")

    with pytest.raises(DuplicateKey):
        await write(uow, "z", "a")

    assert await committed(uow) == {"a"}


async def test_of_two_writers_racing_for_one_key_one_commits_and_the_other_is_duplicate_key(uow):
    outcomes = await asyncio.gather(write(uow, "a"), write(uow, "a"), return_exceptions=True)

    assert sorted(type(outcome).__name__ for outcome in outcomes) == ["DuplicateKey", "NoneType"]
    assert await committed(uow) == {"a"}


async def test_a_read_only_unit_of_work_reads_what_was_committed_beside_an_open_writer(uow):
    await write(uow, "a")
    async with uow() as writer:
        await writer.keys.add("b")
        # On SQLite the writer holds the write lock until it ends; a reader does not wait
        # for it, and sees only what was committed before.
        assert await asyncio.wait_for(committed(uow), timeout=5) == {"a"}
        await writer.commit()

    assert await committed(uow) == {"a", "b"}


# Not PostgreSQL: its writers run side by side, and its repositories lock rows instead.
@pytest.mark.parametrize("engine", ["sqlite", "fake"])
async def test_writers_of_one_process_take_turns_where_the_database_has_one_writer(uow):
    seen_by_second: list[set[str]] = []

    async def second() -> None:
        async with uow() as tx:
            seen_by_second.append(await tx.keys.all())

    async with uow() as first:
        await first.keys.add("a")
        waiting = asyncio.create_task(second())
        await asyncio.sleep(0.05)
        assert seen_by_second == []
        await first.commit()
    await waiting

    assert seen_by_second == [{"a"}]


# SQLite only: its writers run in the event loop, and must not stop it while they wait.
@pytest.mark.parametrize("engine", ["sqlite"])
async def test_a_writer_waits_for_another_processs_write_lock_while_the_event_loop_runs(uow):
    async with uow() as tx:
        database = make_url(tx.db.url).database
    other_process = sqlite3.connect(database, isolation_level=None)
    other_process.execute("BEGIN IMMEDIATE")
    other_process.execute("INSERT INTO keys (key) VALUES ('theirs')")
    seen_by_writer: list[set[str]] = []

    async def writer() -> None:
        async with uow() as tx:
            seen_by_writer.append(await tx.keys.all())
            await tx.keys.add("ours")
            await tx.commit()

    waiting = asyncio.create_task(writer())
    await asyncio.sleep(0.2)
    # Meanwhile the loop serves other work: a reader, beside the waiting writer.
    assert await committed(uow) == set()
    assert seen_by_writer == []
    other_process.execute("COMMIT")
    await asyncio.wait_for(waiting, 5)
    other_process.close()

    assert seen_by_writer == [{"theirs"}]
    assert await committed(uow) == {"theirs", "ours"}


# --- the SQL side --------------------------------------------------------------------------


async def test_insert_once_refuses_a_taken_key_and_the_transaction_goes_on(db, keys, count_keys):
    async with UnitOfWork(db) as uow:
        assert await insert_once(uow.session, keys, {"key": "a"})
        assert not await insert_once(uow.session, keys, {"key": "a"})
        # Still usable: the clash did not abort the transaction (as it would on PostgreSQL).
        await uow.session.execute(insert(keys).values(key="b"))
        await uow.commit()
    assert await count_keys(db) == 2


async def test_insert_once_waits_for_a_concurrent_writer_of_the_same_key(db, keys, count_keys):
    first = UnitOfWork(db)
    await first.__aenter__()
    assert await insert_once(first.session, keys, {"key": "a"})

    async def second() -> bool:
        async with UnitOfWork(db) as uow:
            inserted = await insert_once(uow.session, keys, {"key": "a"})
            await uow.commit()
            return inserted

    racing = asyncio.create_task(second())
    await asyncio.sleep(0.2)
    # The first one's row is not committed yet: the second may neither insert nor give up.
    assert not racing.done()
    await first.commit()
    await first.__aexit__(None, None, None)

    assert await asyncio.wait_for(racing, 5) is False
    assert await count_keys(db) == 1


async def test_a_row_that_breaks_another_constraint_is_no_duplicate_key(db, keys, count_keys):
    # A NOT NULL column left empty is a defect, not a lost race: a use case must not read
    # a winner's row that is not there.
    with pytest.raises(IntegrityError):
        async with UnitOfWork(db) as uow:
            await insert_once(uow.session, keys, {"key": None})
    with pytest.raises(IntegrityError):
        async with UnitOfWork(db) as uow:
            await uow.session.execute(insert(keys).values(key=None))
    assert await count_keys(db) == 0


async def test_duplicate_key_says_which_key_and_keeps_the_drivers_error_as_its_cause(
    db, keys, add_key
):
    async with UnitOfWork(db) as uow:
        await uow.session.execute(insert(keys).values(key="a"))
        await uow.commit()

    with pytest.raises(DuplicateKey, match=r"(?i)unique") as raised:
        await add_key(db, "a")

    assert type(raised.value.__cause__).__name__ == "IntegrityError"


async def test_migrating_again_keeps_the_rows_and_makes_the_runtimes_table_too(
    db, keys, count_keys
):
    async with UnitOfWork(db) as uow:
        await uow.session.execute(insert(keys).values(key="a"))
        await uow.commit()

    await db.migrate(keys.metadata)

    assert await count_keys(db) == 1
    assert len(await db.secret("page-tokens")) == 32


async def test_every_replica_of_a_database_shares_one_page_token_key(database_url):
    first, second = Database(database_url), Database(database_url)
    await first.migrate(MetaData())
    keys = await asyncio.gather(first.secret("page-tokens"), second.secret("page-tokens"))
    assert keys[0] == keys[1]
    assert len(keys[0]) == 32
    assert await first.secret("other") != keys[0]
    token = (await PageTokens.load(first)).issue("users", ["u"])
    assert (await PageTokens.load(second)).read_id("users", token) == "u"
    await first.dispose()
    await second.dispose()


WAITING = "database not ready; trying again"


async def test_a_database_not_there_yet_is_tried_again_saying_why_but_not_its_password(
    monkeypatch,
):
    # Small waits, so that the doubling and its ceiling show within half a second.
    monkeypatch.setattr(storage, "RETRY_INITIAL_SECONDS", 0.01)
    monkeypatch.setattr(storage, "RETRY_MAX_SECONDS", 0.04)
    port = free_port()  # nothing listens there
    db = Database(f"postgresql://shop_order:Pa55-w0rd-x@127.0.0.1:{port}/shop_order")
    with structlog.testing.capture_logs() as lines:
        waiting = asyncio.create_task(db.migrate_when_reachable(MetaData()))
        await asyncio.sleep(0.5)
        assert not waiting.done()
        waiting.cancel()  # as a SIGTERM during the start does
        with pytest.raises(asyncio.CancelledError):
            await waiting
    await db.dispose()
    tries = [line for line in lines if line["event"] == WAITING]
    assert len(tries) >= 5
    assert {line["database"] for line in tries} == {
        f"postgresql+asyncpg://shop_order:***@127.0.0.1:{port}/shop_order"
    }
    assert all(line["reason"].startswith("ConnectionRefusedError: ") for line in tries)
    waits = [line["retry_in_seconds"] for line in tries]
    assert waits[0] <= 0.01 and max(waits) <= 0.04 and waits[-1] >= 0.02
    assert "Pa55-w0rd-x" not in repr(lines)


async def test_the_wait_ends_once_the_database_is_made_and_said_what_was_missing(monkeypatch):
    server = make_url(postgres_server_url()).set(drivername="postgresql")
    monkeypatch.setattr(storage, "RETRY_INITIAL_SECONDS", 0.01)
    monkeypatch.setattr(storage, "RETRY_MAX_SECONDS", 0.04)
    name = f"shop_test_{uuid.uuid4().hex[:12]}"  # made only once the service waits for it
    db = Database(server.set(database=name).render_as_string(hide_password=False))
    admin = await asyncpg.connect(server.render_as_string(hide_password=False))
    try:
        with structlog.testing.capture_logs() as lines:
            waiting = asyncio.create_task(db.migrate_when_reachable(MetaData()))
            async with asyncio.timeout(10):
                while not any(line["event"] == WAITING for line in lines):
                    await asyncio.sleep(0.01)
            await admin.execute(f'CREATE DATABASE "{name}"')
            await asyncio.wait_for(waiting, 10)
        await db.dispose()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    reasons = {line["reason"] for line in lines if line["event"] == WAITING}
    assert reasons == {f'InvalidCatalogNameError: database "{name}" does not exist'}
    assert lines[-1]["event"] == "database ready"


async def test_a_lost_postgresql_connection_is_unavailable_and_the_next_transaction_reconnects(
    keys,
):
    async with (
        fresh_database_url("postgresql", None) as url,
        migrated_database(url, keys.metadata) as db,
    ):
        await _add_key(db, keys, "before")
        # The server drops every connection to the database (a restart, a failover).
        server = make_url(postgres_server_url()).set(drivername="postgresql")
        admin = await asyncpg.connect(server.render_as_string(hide_password=False))
        try:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid()",
                make_url(url).database,
            )
        finally:
            await admin.close()
        with pytest.raises(Unavailable) as lost:
            await _add_key(db, keys, "lost")
        assert lost.value.retryable
        await _add_key(db, keys, "after")
        async with db.session(readonly=True) as session:
            stored = (await session.execute(select(keys.c.key))).scalars().all()
    assert sorted(stored) == ["after", "before"]


async def _add_key(db: Database, keys: Table, key: str) -> None:
    async with db.session() as session:
        await session.execute(insert(keys).values(key=key))
        await session.commit()


def test_plain_urls_get_their_drivers():
    assert driver_url("postgresql://postgres@db/shop").startswith("postgresql+asyncpg://")
    assert driver_url("sqlite:///x.db") == "sqlite+pysqlite:///x.db"


async def test_datetimes_come_back_as_the_same_utc_instant(database_url):
    metadata = MetaData()
    table = Table("t", metadata, Column("id", Integer, primary_key=True), Column("at", UtcDateTime))
    written = datetime(2026, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    async with migrated_database(database_url, metadata) as db, db.session() as session:
        await session.execute(insert(table).values(id=1, at=written))
        await session.commit()
        read = (await session.execute(select(table.c.at))).scalar_one()
    assert read == written
    assert read.tzinfo is UTC


async def test_insert_once_tells_apart_two_tables_of_one_name(tmp_path):
    # Two services' tables may share a name in one process (tests, a tool): each insert
    # writes its own table's columns.
    first = Table("items", MetaData(), Column("id", String(8), primary_key=True))
    second = Table(
        "items",
        MetaData(),
        Column("id", String(8), primary_key=True),
        Column("note", String(8), nullable=False),
    )
    for n, table in enumerate((first, second)):
        db = Database(f"sqlite:///{tmp_path / f'{n}.db'}")
        await db.migrate(table.metadata)
        row = {"id": "a"} if table is first else {"id": "a", "note": "x"}
        async with UnitOfWork(db) as uow:
            assert await insert_once(uow.session, table, row)
            await uow.commit()
        async with UnitOfWork(db, readonly=True) as uow:
            assert (await uow.session.execute(select(table))).mappings().one() == row
        await db.dispose()
