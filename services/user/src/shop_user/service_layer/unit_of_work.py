"""The transaction use cases run in: a Protocol, and its SQL implementation."""

from __future__ import annotations

from types import TracebackType
from typing import Protocol

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shop_grpc.changes import ChangeSignal
from shop_grpc.storage import Database, Transaction, UnitOfWork
from shop_user.adapters.repository import SqlUserRepository, UserRepository
from shop_user.domain.errors import StorageConflict


class UserUnitOfWork(Transaction, Protocol):
    """One transaction per ``async with``; it may be entered again for the next one."""

    @property
    def users(self) -> UserRepository: ...


class SqlUserUnitOfWork(UnitOfWork):
    users: SqlUserRepository

    def __init__(self, db: Database, changes: ChangeSignal) -> None:
        super().__init__(db)
        self.changes = changes

    def bind(self, session: AsyncSession) -> None:
        self.users = SqlUserRepository(session, is_postgres=self.is_postgres)

    async def commit(self) -> None:
        await super().commit()
        self.changes.notify()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await super().__aexit__(exc_type, exc, tb)
        # A unique constraint caught what the checks before it could not see yet:
        # a concurrent transaction committed the same key first.
        if isinstance(exc, IntegrityError):
            raise StorageConflict() from exc
