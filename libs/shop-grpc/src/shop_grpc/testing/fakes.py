"""``storage.UnitOfWork`` in memory, for the unit tests of use cases.

A service's unit tests keep their own fake repositories, over plain data; the transaction
around them is this one:

    @dataclass
    class Tables:                               # what the service stores
        users: dict[str, User] = field(default_factory=dict)

    class FakeUserUnitOfWork(FakeUnitOfWork[Tables]):
        def bind(self, state: Tables) -> None:
            self.users = FakeUsers(state)       # repositories over this transaction's copy

    db = FakeDatabase(Tables())
    uow = partial(FakeUserUnitOfWork, db)       # a TransactionFactory, as bootstrap.py builds
    await services.create_user(uow, ...)
    assert list(db.state.users) == [...]        # what was committed

It keeps the promises of the SQL one (``shop_grpc.storage``), so that a use case which relies
on anything else fails here as it would on a database:

- ``commit()`` publishes the work; leaving the block, whether it raised or not, discards
  whatever was not committed.
- A fake repository whose write breaks a unique key raises ``UniqueViolation`` (the driver's
  IntegrityError, here); leaving the block then discards the work and raises
  ``storage.DuplicateKey``, which is what the use case sees of a lost race.
- ``readonly=True`` reads beside a writer without waiting for it, and may not commit (an
  AssertionError): on SQLite its writes would bypass the write lock.
- Writers take turns, as SQLite's do. A task that opens a writer inside its own open writer
  would wait for itself forever there; here that is an AssertionError at once.

Each unit of work works on a deep copy of the committed state taken when it begins; a
concurrent replica's commit is ``FakeDatabase.commit_elsewhere``.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from types import TracebackType
from typing import Generic, Self, TypeVar

from shop_grpc.storage import DuplicateKey

S = TypeVar("S")


class UniqueViolation(Exception):
    """A fake repository's write broke a unique key: what a driver's IntegrityError is to the
    SQL unit of work. Its message names the key, e.g. ``payments.order_id``."""


class FakeDatabase(Generic[S]):
    """The committed state, shared by every ``FakeUnitOfWork`` made on it.

    `state` is any deep-copyable object (a dataclass of dicts, say). Tests set up and inspect
    it directly when no unit of work is open; `commits` counts the commits made through units
    of work.
    """

    def __init__(self, state: S) -> None:
        self.state = state
        self.commits = 0
        self._version = 0
        self._writing = asyncio.Lock()
        self._writer: asyncio.Task[object] | None = None

    def commit_elsewhere(self, change: Callable[[S], object]) -> None:
        """Another replica's transaction applies `change` to the state and commits, now.

        Units of work already open do not see it (they read the copy they began with), their
        rollback leaves it in place, and their unique keys clash with it: this is how a test
        makes one lose a race. An open writer that then commits anyway raises AssertionError:
        whole copies cannot be merged, so a race must end the way it does on a database, with
        the writer's UniqueViolation.
        """
        change(self.state)
        self._version += 1

    async def _begin_write(self) -> int:
        task = asyncio.current_task()
        if task is not None and task is self._writer:
            raise AssertionError(
                "a writing unit of work opened inside another of the same task: "
                "on SQLite it would wait for the first one's write lock forever"
            )
        await self._writing.acquire()
        self._writer = task
        return self._version

    def _end_write(self) -> None:
        self._writer = None
        self._writing.release()

    def _publish(self, state: S, began_at: int) -> int:
        """Makes a copy of `state` the committed one; the version it is."""
        if self._version != began_at:
            raise AssertionError(
                "committing over a commit made elsewhere since this unit of work began: "
                "raise UniqueViolation where the concurrent write clashes with this one"
            )
        self.state = copy.deepcopy(state)
        self.commits += 1
        self._version += 1
        return self._version


class FakeUnitOfWork(Generic[S]):
    """One transaction over a ``FakeDatabase``: the fake of ``storage.UnitOfWork``.

    async with FakeUserUnitOfWork(db) as tx:   # a subclass, as in the module's example
        ...                                     # its repositories work on tx.state
        await tx.commit()                       # the rest is discarded on leaving

    Raises on leaving: ``storage.DuplicateKey`` when the block raised ``UniqueViolation``.
    """

    state: S
    """This transaction's own copy of the committed state, from entry to exit."""

    def __init__(self, db: FakeDatabase[S], *, readonly: bool = False) -> None:
        self.db = db
        self.readonly = readonly
        self._began_at = 0

    async def __aenter__(self) -> Self:
        if not self.readonly:
            self._began_at = await self.db._begin_write()
        try:
            self.state = copy.deepcopy(self.db.state)
            self.bind(self.state)
        except BaseException:
            # Leaving is not called for a block never entered: give the write lock back here.
            if not self.readonly:
                self.db._end_write()
            raise
        return self

    def bind(self, state: S) -> None:
        """Subclasses create their repositories on `state` here, as the SQL ones do on their
        session."""

    async def commit(self) -> None:
        """Publishes the work; AssertionError in a read-only unit of work."""
        if self.readonly:
            raise AssertionError("a read-only unit of work never writes")
        self._began_at = self.db._publish(self.state, self._began_at)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Whatever was not committed stays in this copy, which nothing publishes.
        if not self.readonly:
            self.db._end_write()
        if isinstance(exc, UniqueViolation):
            raise DuplicateKey(str(exc)) from exc
