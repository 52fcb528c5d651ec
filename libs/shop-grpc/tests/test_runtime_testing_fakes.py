"""The kit's fake unit of work (shop_grpc.testing.fakes): its own promises beyond those it
shares with storage's (test_runtime_storage.py), and what it refuses rather than let a test
pass by mistake."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import partial

import pytest

from shop_grpc.testing import (
    FakeDatabase,
    FakeUnitOfWork,
)


@dataclass
class Counter:
    value: int = 0


def fake() -> tuple[FakeDatabase[Counter], partial[FakeUnitOfWork[Counter]]]:
    db = FakeDatabase(Counter())
    return db, partial(FakeUnitOfWork, db)


async def enter(uow: partial[FakeUnitOfWork[Counter]], *, readonly: bool = False) -> None:
    async with uow(readonly=readonly):
        pass


async def test_commits_publish_a_copy_and_are_counted():
    db, uow = fake()
    async with uow() as tx:
        tx.state.value = 1
        await tx.commit()
        tx.state.value = 2
        await tx.commit()
        tx.state.value = 3

    assert (db.state.value, db.commits) == (2, 2)


async def test_a_read_only_unit_of_work_may_not_commit():
    db, uow = fake()
    async with uow(readonly=True) as tx:
        tx.state.value = 1
        with pytest.raises(AssertionError, match="never writes"):
            await tx.commit()

    assert (db.state.value, db.commits) == (0, 0)


async def test_a_writer_opened_inside_another_of_its_task_fails_at_once_instead_of_waiting():
    _, uow = fake()
    async with uow():
        await enter(uow, readonly=True)  # a reader does not wait for the writer
        with pytest.raises(AssertionError, match="inside another"):
            await enter(uow)
    await enter(uow)  # the write lock was given back


async def test_a_writer_whose_repositories_cannot_be_made_gives_the_write_lock_back():
    failures = [LookupError("a repository that cannot be made")]

    class BrokenOnce(FakeUnitOfWork[Counter]):
        def bind(self, state: Counter) -> None:
            if failures:
                raise failures.pop()

    uow = partial(BrokenOnce, FakeDatabase(Counter()))
    with pytest.raises(LookupError):
        await enter(uow)

    await asyncio.wait_for(enter(uow), timeout=1)


async def test_a_commit_elsewhere_is_unseen_by_an_open_unit_and_outlives_its_rollback():
    db, uow = fake()
    async with uow() as tx:
        db.commit_elsewhere(lambda counter: setattr(counter, "value", 5))
        assert tx.state.value == 0
        tx.state.value = 1
        # Committing over it would lose it: whole copies cannot be merged.
        with pytest.raises(AssertionError, match="elsewhere"):
            await tx.commit()

    assert db.state.value == 5
    assert db.commits == 0
