"""Units of work on both back ends: unique-key races, and reads that never queue behind writes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select

from shop_grpc.storage import Database, DuplicateKey, UnitOfWork, insert_once

metadata = MetaData()
keys = Table(
    "keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(16), nullable=False, unique=True),
)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await database.migrate(metadata)
    yield database
    await database.dispose()


async def count(db: Database) -> int:
    async with UnitOfWork(db, readonly=True) as uow:
        return int(await uow.session.scalar(select(func.count()).select_from(keys)) or 0)


async def test_insert_once_refuses_a_taken_key_and_the_transaction_goes_on(db):
    async with UnitOfWork(db) as uow:
        assert await insert_once(uow.session, insert(keys).values(key="a"))
        assert not await insert_once(uow.session, insert(keys).values(key="a"))
        # Still usable: the clash did not abort the transaction (as it would on PostgreSQL).
        await uow.session.execute(insert(keys).values(key="b"))
        await uow.commit()
    assert await count(db) == 2


async def write(db: Database, *written: str) -> None:
    async with UnitOfWork(db) as uow:
        for key in written:
            await uow.session.execute(insert(keys).values(key=key))
        await uow.commit()


async def test_a_write_that_loses_a_unique_key_race_is_duplicate_key_and_rolled_back(db):
    await write(db, "a")
    with pytest.raises(DuplicateKey):
        await write(db, "z", "a")
    assert await count(db) == 1


async def test_a_read_only_unit_of_work_reads_while_a_writer_is_open(db):
    async with UnitOfWork(db) as writer:
        await writer.session.execute(insert(keys).values(key="a"))
        # On SQLite the writer holds the write lock until it ends; a reader does not wait
        # for it, and sees what was committed before.
        assert await asyncio.wait_for(count(db), timeout=5) == 0
        await writer.commit()
    assert await count(db) == 1
