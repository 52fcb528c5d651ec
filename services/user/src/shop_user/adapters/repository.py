"""Users and their change log in SQL."""

from __future__ import annotations

import zlib
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, insert, or_, select, text, update
from sqlalchemy.engine import RowMapping

from shop_grpc.storage import Session
from shop_user.adapters.orm import user_events, users
from shop_user.domain.model import EventKind, RecordedRequest, User, UserEvent

# Held from appending an event until commit, so events commit in sequence order
# and a watcher that has seen sequence s never later finds a smaller one appear.
EVENT_LOCK_KEY = zlib.crc32(b"shop_user.user_events")

_USER_COLUMNS = (
    users.c.user_id,
    users.c.username,
    users.c.email,
    users.c.display_name,
    users.c.create_time,
    users.c.update_time,
)


def snapshot(user: User) -> dict[str, str]:
    return {
        "user_id": user.user_id,
        "username": user.username,
        "email": user.email,
        "display_name": user.display_name,
        "create_time": user.create_time.isoformat(),
        "update_time": user.update_time.isoformat(),
    }


def from_snapshot(data: dict[str, Any]) -> User:
    return User(
        user_id=data["user_id"],
        username=data["username"],
        email=data["email"],
        display_name=data["display_name"],
        create_time=datetime.fromisoformat(data["create_time"]),
        update_time=datetime.fromisoformat(data["update_time"]),
    )


def _user(row: RowMapping) -> User:
    return User(
        user_id=row["user_id"],
        username=row["username"],
        email=row["email"],
        display_name=row["display_name"],
        create_time=row["create_time"],
        update_time=row["update_time"],
    )


def _event(row: RowMapping) -> UserEvent:
    return UserEvent(
        sequence=row["sequence"],
        kind=EventKind(row["kind"]),
        user=from_snapshot(row["user"]),
        event_time=row["event_time"],
    )


class SqlUserRepository:
    def __init__(self, session: Session, *, is_postgres: bool) -> None:
        self.session = session
        self.is_postgres = is_postgres

    async def _users(self, statement: Any) -> list[User]:
        result = await self.session.execute(statement)
        return [_user(row) for row in result.mappings()]

    async def get(self, user_id: str, *, for_update: bool = False) -> User | None:
        query = select(*_USER_COLUMNS).where(users.c.user_id == user_id)
        found = await self._users(query.with_for_update() if for_update else query)
        return found[0] if found else None

    async def get_by_request_id(self, request_id: str) -> User | None:
        found = await self._users(select(*_USER_COLUMNS).where(users.c.request_id == request_id))
        return found[0] if found else None

    async def holders(self, usernames: Collection[str], emails: Collection[str]) -> list[User]:
        if not usernames and not emails:
            return []
        return await self._users(
            select(*_USER_COLUMNS).where(
                or_(users.c.username.in_(list(usernames)), users.c.email.in_(list(emails)))
            )
        )

    async def add(self, entries: Sequence[tuple[User, str, str]]) -> None:
        rows = [
            {**_row(user), "password_hash": password_hash, "request_id": request_id or None}
            for user, password_hash, request_id in entries
        ]
        if rows:
            await self.session.execute(insert(users), rows)

    async def update(self, user: User) -> None:
        values = _row(user)
        del values["user_id"], values["create_time"]
        await self.session.execute(
            update(users).where(users.c.user_id == user.user_id).values(**values)
        )

    async def delete(self, user_id: str) -> None:
        await self.session.execute(delete(users).where(users.c.user_id == user_id))

    async def page(self, after: tuple[datetime, str] | None, limit: int) -> list[User]:
        query = select(*_USER_COLUMNS).order_by(users.c.create_time, users.c.user_id).limit(limit)
        if after is not None:
            time, user_id = after
            query = query.where(
                or_(
                    users.c.create_time > time,
                    and_(users.c.create_time == time, users.c.user_id > user_id),
                )
            )
        return await self._users(query)

    async def append_events(
        self, kind: EventKind, entries: Sequence[tuple[User, str, str]], now: datetime
    ) -> None:
        if not entries:
            return
        if self.is_postgres:
            await self.session.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": EVENT_LOCK_KEY}
            )
        rows = [
            {
                "kind": kind.value,
                "user_id": user.user_id,
                "user": snapshot(user),
                "event_time": now,
                "request_id": request_id or None,
                "request_fingerprint": fingerprint or None,
            }
            for user, request_id, fingerprint in entries
        ]
        # One statement per row keeps sequence numbers in request order on every back end.
        for row in rows:
            await self.session.execute(insert(user_events).values(**row))

    async def change_for_request(self, request_id: str) -> RecordedRequest | None:
        result = await self.session.execute(
            select(user_events).where(user_events.c.request_id == request_id)
        )
        row = result.mappings().first()
        if row is None:
            return None
        event = _event(row)
        return RecordedRequest(event.kind, event.user, row["request_fingerprint"])

    async def events_after(self, sequence: int, limit: int) -> list[UserEvent]:
        result = await self.session.execute(
            select(user_events)
            .where(user_events.c.sequence > sequence)
            .order_by(user_events.c.sequence)
            .limit(limit)
        )
        return [_event(row) for row in result.mappings()]


def _row(user: User) -> dict[str, Any]:
    return {
        "user_id": user.user_id,
        "username": user.username,
        "email": user.email,
        "display_name": user.display_name,
        "create_time": user.create_time,
        "update_time": user.update_time,
    }
