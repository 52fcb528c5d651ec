"""Use cases: plain async functions over a unit of work.

Writes check unique keys before inserting, and the database's unique
constraints catch what a concurrent transaction committed meanwhile; such a
conflict is retried once, when the checks see the winner's row and answer
ALREADY_EXISTS (or replay the winner's result for the same request id).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import structlog

from shop_grpc import pagination
from shop_grpc.idempotency import RequestIdReused
from shop_grpc.pagination import PageTokens
from shop_grpc.storage import utcnow
from shop_user.domain import passwords
from shop_user.domain.errors import StorageConflict, UserNotFound, UserTaken
from shop_user.domain.model import Changes, EventKind, NewUser, Profile, User, UserEvent
from shop_user.service_layer.unit_of_work import UserUnitOfWork

log = structlog.get_logger(__name__)

T = TypeVar("T")
MAX_BATCH = 1000
PAGE_SCOPE = "users"
WATCH_BATCH = 500


@dataclass(frozen=True)
class Page:
    users: list[User]
    next_page_token: str


async def _retrying(attempt: Callable[[], Awaitable[T]]) -> T:
    try:
        return await attempt()
    except StorageConflict:
        log.info("retrying after a concurrent change")
        return await attempt()


# --- create -------------------------------------------------------------------------------


async def create_user(uow: UserUnitOfWork, new: NewUser) -> User:
    # Hash before the transaction: it is slow and needs no lock.
    password_hash = await passwords.hash_password_async(new.password)
    (user,) = await _retrying(lambda: _create_all(uow, [new], [password_hash], [""]))
    return user


async def batch_create_users(uow: UserUnitOfWork, entries: Sequence[NewUser]) -> list[User]:
    """Creates every entry or none; entries are named ``requests[i]`` in errors."""
    names = [f"requests[{i}]" for i in range(len(entries))]
    _ensure_distinct(entries, names)
    hashes = await passwords.hash_passwords([entry.password for entry in entries])
    return await _retrying(lambda: _create_all(uow, entries, hashes, names))


def _ensure_distinct(entries: Sequence[NewUser], names: Sequence[str]) -> None:
    first_username: dict[str, str] = {}
    first_email: dict[str, str] = {}
    for name, entry in zip(names, entries, strict=True):
        profile = entry.profile.normalized()
        if other := first_username.get(profile.username):
            raise UserTaken("username", profile.username, entry=name, other=other)
        if other := first_email.get(profile.email):
            raise UserTaken("email", profile.email, entry=name, other=other)
        first_username[profile.username] = name
        first_email[profile.email] = name


async def _create_all(
    uow: UserUnitOfWork,
    entries: Sequence[NewUser],
    hashes: Sequence[str],
    names: Sequence[str],
) -> list[User]:
    async with uow:
        results = [await _replayed_create(uow, entry) for entry in entries]
        fresh = [i for i, result in enumerate(results) if result is None]
        try:
            await _ensure_free(uow, [(names[i], entries[i].profile.normalized()) for i in fresh])
        except UserTaken:
            # The same request may have committed since we looked: then it is a replay.
            replays = [await _replayed_create(uow, entries[i]) for i in fresh]
            if not all(replays):
                raise
            for i, replay in zip(fresh, replays, strict=True):
                results[i] = replay
            return [r for r in results if r is not None]
        now = utcnow()
        created = {i: User.create(entries[i].profile, now) for i in fresh}
        ids = [entry.request_id for entry in entries]
        await uow.users.add([(user, hashes[i], ids[i]) for i, user in created.items()])
        await uow.users.append_events(
            EventKind.CREATED, [(user, ids[i]) for i, user in created.items()], now
        )
        if created:
            await uow.commit()
    for i, user in created.items():
        log.info("user created", user_id=user.user_id)
        results[i] = user
    return [user for user in results if user is not None]


async def _replayed_create(uow: UserUnitOfWork, entry: NewUser) -> User | None:
    """The user an earlier create with this request id made: as it is now, or as it was.

    Raises RequestIdReused if that create asked for another profile (the password is not
    compared: it is kept only as a hash that cannot be checked cheaply).
    """
    if not entry.request_id:
        return None
    prior = await _prior(uow, EventKind.CREATED, entry.request_id)
    if prior is None:
        return None
    if prior.user.profile != entry.profile.normalized():
        raise RequestIdReused(entry.request_id)
    return await uow.users.get_by_request_id(entry.request_id) or prior.user


async def _ensure_free(uow: UserUnitOfWork, wanted: Sequence[tuple[str, Profile]]) -> None:
    holders = await uow.users.holders(
        {profile.username for _, profile in wanted}, {profile.email for _, profile in wanted}
    )
    usernames = {user.username for user in holders}
    emails = {user.email for user in holders}
    for name, profile in wanted:
        if profile.username in usernames:
            raise UserTaken("username", profile.username, entry=name)
        if profile.email in emails:
            raise UserTaken("email", profile.email, entry=name)


# --- read ---------------------------------------------------------------------------------


async def get_user(uow: UserUnitOfWork, user_id: str) -> User:
    async with uow:
        user = await uow.users.get(user_id)
    if user is None:
        raise UserNotFound(user_id)
    return user


async def list_users(
    uow: UserUnitOfWork, tokens: PageTokens, page_size: int, page_token: str
) -> Page:
    """One page of users in creation order, and the next page's token ("" on the last)."""
    after = tokens.read_time_and_id(PAGE_SCOPE, page_token)
    size = pagination.page_size(page_size)
    async with uow:
        found = await uow.users.page(after, size + 1)
    if len(found) <= size:
        return Page(found, "")
    last = found[size - 1]
    return Page(found[:size], tokens.issue(PAGE_SCOPE, [last.create_time, last.user_id]))


async def watch_users(
    uow: UserUnitOfWork, wait: Callable[[], Awaitable[None]], after_sequence: int
) -> AsyncIterator[UserEvent]:
    """Events after `after_sequence`, then new ones as they commit, until closed."""
    after = after_sequence
    while True:
        # Armed before reading, so a commit that lands during the read still wakes us.
        woken = asyncio.ensure_future(wait())
        await asyncio.sleep(0)
        try:
            async with uow:
                events = await uow.users.events_after(after, WATCH_BATCH)
            for event in events:
                yield event
                after = event.sequence
            if len(events) < WATCH_BATCH:
                await woken
        finally:
            woken.cancel()


# --- update and delete --------------------------------------------------------------------


async def update_user(
    uow: UserUnitOfWork, user_id: str, changes: Changes, request_id: str = ""
) -> User:
    return await _retrying(lambda: _update(uow, user_id, changes, request_id))


async def _update(uow: UserUnitOfWork, user_id: str, changes: Changes, request_id: str) -> User:
    async with uow:
        if prior := await _prior(uow, EventKind.UPDATED, request_id):
            return await _replayed_update(uow, prior, user_id, changes, request_id)
        current = await uow.users.get(user_id, for_update=True)
        if current is None:
            raise UserNotFound(user_id)
        updated = current.changed(changes, utcnow())
        await _ensure_free_for(uow, current, updated)
        await uow.users.update(updated)
        await uow.users.append_events(
            EventKind.UPDATED, [(updated, request_id)], updated.update_time
        )
        await uow.commit()
    log.info("user updated", user_id=user_id)
    return updated


async def _prior(uow: UserUnitOfWork, kind: EventKind, request_id: str) -> UserEvent | None:
    """The change an earlier call with this request id made, if any."""
    return await uow.users.event_for_request(kind, request_id) if request_id else None


async def _replayed_update(
    uow: UserUnitOfWork, prior: UserEvent, user_id: str, changes: Changes, request_id: str
) -> User:
    if prior.user.user_id != user_id or not prior.user.shows(changes):
        raise RequestIdReused(request_id)
    return await uow.users.get(user_id) or prior.user


async def _ensure_free_for(uow: UserUnitOfWork, current: User, updated: User) -> None:
    usernames = {updated.username} - {current.username}
    emails = {updated.email} - {current.email}
    for holder in await uow.users.holders(usernames, emails):
        if holder.user_id == current.user_id:
            continue
        if holder.username in usernames:
            raise UserTaken("username", updated.username)
        raise UserTaken("email", updated.email)


async def delete_user(uow: UserUnitOfWork, user_id: str, request_id: str = "") -> None:
    await _retrying(lambda: _delete(uow, user_id, request_id))


async def _delete(uow: UserUnitOfWork, user_id: str, request_id: str) -> None:
    async with uow:
        if prior := await _prior(uow, EventKind.DELETED, request_id):
            if prior.user.user_id != user_id:
                raise RequestIdReused(request_id)
            return
        current = await uow.users.get(user_id, for_update=True)
        if current is None:
            raise UserNotFound(user_id)
        await uow.users.delete(user_id)
        await uow.users.append_events(EventKind.DELETED, [(current, request_id)], utcnow())
        await uow.commit()
    log.info("user deleted", user_id=user_id)
