"""How long units of work hold their transaction (shop_grpc.metrics.database): each one timed
by its access and its outcome."""

from __future__ import annotations

import pytest
from sqlalchemy import Table, insert

from shop_grpc.storage import Database, DuplicateKey, UnitOfWork
from shop_grpc.testing import MetricChanges


async def commit_then_refuse(db: Database, keys: Table) -> None:
    async with UnitOfWork(db) as uow:
        await uow.session.execute(insert(keys).values(key="b"))
        await uow.commit()
        raise LookupError("refused after the commit")


async def test_each_transaction_is_timed_by_access_and_outcome(db, keys, count_keys, add_key):
    changes = MetricChanges()
    async with UnitOfWork(db) as uow:
        await uow.session.execute(insert(keys).values(key="a"))
        await uow.commit()
    assert await count_keys(db) == 1
    with pytest.raises(DuplicateKey):
        await add_key(db, "a")
    async with UnitOfWork(db):
        pass
    # Committed, then refused (as inventory records an expiry, then answers EXPIRED).
    with pytest.raises(LookupError):
        await commit_then_refuse(db, keys)

    def timed(access: str, outcome: str) -> float:
        labels = {"access": access, "outcome": outcome}
        return changes.of("shop_db_transaction_duration_seconds_count", **labels)

    assert timed("write", "committed") == 2
    assert timed("read", "rolled_back") == 1
    assert timed("write", "failed") == 1
    assert timed("write", "rolled_back") == 1
