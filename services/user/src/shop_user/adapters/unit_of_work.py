"""The user service's unit of work on SQL: the shared one, with the user repository; every
commit wakes the watchers of the change log."""

from __future__ import annotations

from shop_grpc import storage
from shop_grpc.changes import ChangeSignal
from shop_user.adapters.repository import SqlUserRepository


class SqlUnitOfWork(storage.UnitOfWork):
    users: SqlUserRepository

    def __init__(
        self, db: storage.Database, changes: ChangeSignal, *, readonly: bool = False
    ) -> None:
        super().__init__(db, readonly=readonly)
        self.changes = changes

    def bind(self, session: storage.Session) -> None:
        self.users = SqlUserRepository(session, is_postgres=self.is_postgres)

    async def commit(self) -> None:
        await super().commit()
        self.changes.notify()
