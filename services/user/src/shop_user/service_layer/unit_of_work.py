"""What the user use cases need from storage. ``adapters.unit_of_work`` is the SQL
implementation; unit tests hand in fakes."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Protocol

from shop_grpc.storage import Transaction, TransactionFactory
from shop_user.domain.model import EventKind, RecordedRequest, User, UserEvent


class UserRepository(Protocol):
    async def get(self, user_id: str, *, for_update: bool = False) -> User | None: ...

    async def get_by_request_id(self, request_id: str) -> User | None: ...

    async def credentials(self, login: str) -> tuple[str, str] | None:
        """(user id, password hash) of the user whose username or (lower-cased) email is
        `login`, or None."""
        ...

    async def holders(self, usernames: Collection[str], emails: Collection[str]) -> list[User]:
        """Users that already have one of these usernames or (lower-cased) emails."""
        ...

    async def add(self, entries: Sequence[tuple[User, str, str]]) -> None:
        """Inserts (user, password hash, request id or "") rows."""
        ...

    async def update(self, user: User) -> None: ...

    async def delete(self, user_id: str) -> None: ...

    async def page(self, after: tuple[datetime, str] | None, limit: int) -> list[User]:
        """Users ordered by (create_time, user_id), strictly after the key."""
        ...

    async def append_events(
        self, kind: EventKind, entries: Sequence[tuple[User, str, str]], now: datetime
    ) -> None:
        """Appends one event per (user, request id or "", its fingerprint or "") in order."""
        ...

    async def change_for_request(self, request_id: str) -> RecordedRequest | None: ...

    async def events_after(self, sequence: int, limit: int) -> list[UserEvent]: ...


class UnitOfWork(Transaction, Protocol):
    """One transaction over the users and their change log; uncommitted work is rolled back
    on exit."""

    # A read-only property, so an implementation may narrow its type.
    @property
    def users(self) -> UserRepository: ...


UnitOfWorkFactory = TransactionFactory[UnitOfWork]
