"""Users and their change log in SQL.

Every statement is built once, with bound parameters, so that SQLAlchemy finds it compiled
in its cache from a key computed once instead of building it and its key again on every
call, which cost more than running it.
"""

from __future__ import annotations

import zlib
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Integer,
    Select,
    and_,
    bindparam,
    delete,
    insert,
    or_,
    select,
    text,
    update,
)
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

_USER = select(*_USER_COLUMNS).where(users.c.user_id == bindparam("user_id"))
_USER_FOR_UPDATE = _USER.with_for_update()
_USER_FOR_REQUEST = select(*_USER_COLUMNS).where(users.c.request_id == bindparam("request_id"))
_CREDENTIALS = select(users.c.user_id, users.c.password_hash).where(
    or_(users.c.username == bindparam("login"), users.c.email == bindparam("login"))
)
_HOLDERS = select(*_USER_COLUMNS).where(
    or_(
        users.c.username.in_(bindparam("usernames", expanding=True)),
        users.c.email.in_(bindparam("emails", expanding=True)),
    )
)
_INSERT_USERS = insert(users)
# An update writes the profile; id, creation time, password hash and request_id stay as created.
_UPDATE_USER = (
    update(users)
    .where(users.c.user_id == bindparam("where_user_id"))
    .values(
        {
            name: bindparam(name, type_=users.c[name].type)
            for name in ("username", "email", "display_name", "update_time")
        }
    )
)
_DELETE_USER = delete(users).where(users.c.user_id == bindparam("where_user_id"))
_FIRST_USERS = (
    select(*_USER_COLUMNS)
    .order_by(users.c.create_time, users.c.user_id)
    .limit(bindparam("limit", type_=Integer))
)
_AFTER_TIME = bindparam("after_time", type_=users.c.create_time.type)
_USERS_AFTER = _FIRST_USERS.where(
    or_(
        users.c.create_time > _AFTER_TIME,
        and_(users.c.create_time == _AFTER_TIME, users.c.user_id > bindparam("after_user_id")),
    )
)
_LOCK_EVENTS = text("SELECT pg_advisory_xact_lock(:key)")
_INSERT_EVENT = insert(user_events)
_EVENT_FOR_REQUEST = select(user_events).where(user_events.c.request_id == bindparam("request_id"))
_EVENTS_AFTER = (
    select(user_events)
    .where(user_events.c.sequence > bindparam("after_sequence"))
    .order_by(user_events.c.sequence)
    .limit(bindparam("limit", type_=Integer))
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

    async def _users(self, statement: Select[Any], parameters: dict[str, Any]) -> list[User]:
        result = await self.session.execute(statement, parameters)
        return [_user(row) for row in result.mappings()]

    async def get(self, user_id: str, *, for_update: bool = False) -> User | None:
        statement = _USER_FOR_UPDATE if for_update else _USER
        found = await self._users(statement, {"user_id": user_id})
        return found[0] if found else None

    async def get_by_request_id(self, request_id: str) -> User | None:
        found = await self._users(_USER_FOR_REQUEST, {"request_id": request_id})
        return found[0] if found else None

    async def credentials(self, login: str) -> tuple[str, str] | None:
        result = await self.session.execute(_CREDENTIALS, {"login": login})
        row = result.first()
        return None if row is None else (row.user_id, row.password_hash)

    async def holders(self, usernames: Collection[str], emails: Collection[str]) -> list[User]:
        if not usernames and not emails:
            return []
        parameters = {"usernames": list(usernames), "emails": list(emails)}
        return await self._users(_HOLDERS, parameters)

    async def add(self, entries: Sequence[tuple[User, str, str]]) -> None:
        rows = [
            {**_row(user), "password_hash": password_hash, "request_id": request_id or None}
            for user, password_hash, request_id in entries
        ]
        if rows:
            await self.session.execute(_INSERT_USERS, rows)

    async def update(self, user: User) -> None:
        parameters = {
            "where_user_id": user.user_id,
            "username": user.username,
            "email": user.email,
            "display_name": user.display_name,
            "update_time": user.update_time,
        }
        await self.session.execute(_UPDATE_USER, parameters)

    async def delete(self, user_id: str) -> None:
        await self.session.execute(_DELETE_USER, {"where_user_id": user_id})

    async def page(self, after: tuple[datetime, str] | None, limit: int) -> list[User]:
        if after is None:
            return await self._users(_FIRST_USERS, {"limit": limit})
        time, user_id = after
        parameters = {"after_time": time, "after_user_id": user_id, "limit": limit}
        return await self._users(_USERS_AFTER, parameters)

    async def append_events(
        self, kind: EventKind, entries: Sequence[tuple[User, str, str]], now: datetime
    ) -> None:
        if not entries:
            return
        if self.is_postgres:
            await self.session.execute(_LOCK_EVENTS, {"key": EVENT_LOCK_KEY})
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
            await self.session.execute(_INSERT_EVENT, row)

    async def change_for_request(self, request_id: str) -> RecordedRequest | None:
        result = await self.session.execute(_EVENT_FOR_REQUEST, {"request_id": request_id})
        row = result.mappings().first()
        if row is None:
            return None
        event = _event(row)
        return RecordedRequest(event.kind, event.user, row["request_fingerprint"])

    async def events_after(self, sequence: int, limit: int) -> list[UserEvent]:
        parameters = {"after_sequence": sequence, "limit": limit}
        result = await self.session.execute(_EVENTS_AFTER, parameters)
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
