"""Use cases: plain async functions over a unit of work.

Writes check unique keys before inserting, and the database's unique
constraints catch what a concurrent transaction committed meanwhile
(storage.DuplicateKey); such a conflict is retried once, when the checks see the
winner's row and answer ALREADY_EXISTS (or replay the winner's result for the
same request id).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TypeVar

import structlog

from shop_grpc import pagination
from shop_grpc.idempotency import RequestIdReused, check_replay
from shop_grpc.pagination import Page, PageTokens
from shop_grpc.storage import DuplicateKey, utcnow
from shop_user.domain import passwords
from shop_user.domain.errors import StorageConflict, UserNotFound, UserTaken
from shop_user.domain.model import (
    Changes,
    EventKind,
    NewUser,
    Profile,
    RecordedRequest,
    User,
    UserEvent,
)
from shop_user.service_layer.unit_of_work import UnitOfWork, UnitOfWorkFactory

log = structlog.get_logger(__name__)

T = TypeVar("T")
MAX_BATCH = 1000
PAGE_SCOPE = "users"
WATCH_BATCH = 500


async def _retrying(attempt: Callable[[], Awaitable[T]]) -> T:
    try:
        return await attempt()
    except DuplicateKey:
        log.info("retrying after a concurrent change")
    try:
        return await attempt()
    except DuplicateKey as error:
        raise StorageConflict() from error


# --- create -------------------------------------------------------------------------------


async def create_user(uow: UnitOfWorkFactory, new: NewUser) -> User:
    (user,) = await batch_create_users(uow, [new], names=[""])
    return user


async def batch_create_users(
    uow: UnitOfWorkFactory, entries: Sequence[NewUser], names: Sequence[str] | None = None
) -> list[User]:
    """Creates every entry or none; entries are named ``requests[i]`` in errors.

    A repeated request_id with the same request returns the user it created; with another
    request it raises RequestIdReused. Only entries that are not replays are hashed: hashing is
    slow on purpose, and a replayed batch must not cost it again.
    """
    names = [f"requests[{i}]" for i in range(len(entries))] if names is None else names
    _ensure_distinct(entries, names)
    async with uow(readonly=True) as tx:
        replays = [await _replayed_create(tx, entry) for entry in entries]
    fresh = [i for i, replay in enumerate(replays) if replay is None]
    # Hash before the transaction: it is slow and needs no lock.
    hashed = await passwords.hash_passwords([entries[i].password for i in fresh])
    hashes = [""] * len(entries)
    for i, password_hash in zip(fresh, hashed, strict=True):
        hashes[i] = password_hash
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
    uow: UnitOfWorkFactory,
    entries: Sequence[NewUser],
    hashes: Sequence[str],
    names: Sequence[str],
) -> list[User]:
    async with uow() as tx:
        results = [await _replayed_create(tx, entry) for entry in entries]
        fresh = [i for i, result in enumerate(results) if result is None]
        try:
            await _ensure_free(tx, [(names[i], entries[i].profile.normalized()) for i in fresh])
        except UserTaken:
            # The same request may have committed since we looked: then it is a replay.
            replays = [await _replayed_create(tx, entries[i]) for i in fresh]
            if not all(replays):
                raise
            for i, replay in zip(fresh, replays, strict=True):
                results[i] = replay
            return [r for r in results if r is not None]
        now = utcnow()
        created = {i: User.create(entries[i].profile, now) for i in fresh}
        ids = [entry.request_id for entry in entries]
        await tx.users.add([(user, hashes[i], ids[i]) for i, user in created.items()])
        await tx.users.append_events(
            EventKind.CREATED,
            [(user, ids[i], entries[i].fingerprint) for i, user in created.items()],
            now,
        )
        if created:
            await tx.commit()
    for i, user in created.items():
        log.info("user created", user_id=user.user_id)
        results[i] = user
    return [user for user in results if user is not None]


async def _replayed_create(tx: UnitOfWork, entry: NewUser) -> User | None:
    """The user an earlier create with this request id made: as it is now, or as it was.

    Raises RequestIdReused if the request id was used for another request.
    """
    prior = await _prior(tx, entry.request_id, EventKind.CREATED, entry.fingerprint)
    if prior is None:
        return None
    return await tx.users.get_by_request_id(entry.request_id) or prior.user


async def _ensure_free(tx: UnitOfWork, wanted: Sequence[tuple[str, Profile]]) -> None:
    holders = await tx.users.holders(
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


async def get_user(uow: UnitOfWorkFactory, user_id: str) -> User:
    async with uow(readonly=True) as tx:
        user = await tx.users.get(user_id)
    if user is None:
        raise UserNotFound(user_id)
    return user


async def list_users(
    uow: UnitOfWorkFactory, tokens: PageTokens, page_size: int, page_token: str
) -> Page[User]:
    """One page of users in creation order."""
    after = tokens.read_time_and_id(PAGE_SCOPE, page_token)

    async def fetch(limit: int) -> list[User]:
        async with uow(readonly=True) as tx:
            return await tx.users.page(after, limit)

    def resume_after(user: User) -> str:
        return tokens.issue(PAGE_SCOPE, [user.create_time, user.user_id])

    return await pagination.page_of(fetch, page_size, resume_after)


async def watch_users(
    uow: UnitOfWorkFactory, wait: Callable[[], Awaitable[None]], after_sequence: int
) -> AsyncIterator[UserEvent]:
    """Events after `after_sequence`, then new ones as they commit, until closed."""
    after = after_sequence
    while True:
        # Armed before reading, so a commit that lands during the read still wakes us.
        woken = asyncio.ensure_future(wait())
        await asyncio.sleep(0)
        try:
            async with uow(readonly=True) as tx:
                events = await tx.users.events_after(after, WATCH_BATCH)
            for event in events:
                yield event
                after = event.sequence
            if len(events) < WATCH_BATCH:
                await woken
        finally:
            woken.cancel()


# --- update and delete --------------------------------------------------------------------


async def update_user(
    uow: UnitOfWorkFactory,
    user_id: str,
    changes: Changes,
    request_id: str = "",
    fingerprint: str = "",
) -> User:
    """Applies `changes`; a repeated request_id with the same request returns the user as it is
    now, with another request it raises RequestIdReused."""
    return await _retrying(lambda: _update(uow, user_id, changes, request_id, fingerprint))


async def _update(
    uow: UnitOfWorkFactory, user_id: str, changes: Changes, request_id: str, fingerprint: str
) -> User:
    async with uow() as tx:
        if prior := await _prior(tx, request_id, EventKind.UPDATED, fingerprint):
            _same_user(prior, user_id, request_id)
            return await tx.users.get(user_id) or prior.user
        current = await tx.users.get(user_id, for_update=True)
        if current is None:
            raise UserNotFound(user_id)
        updated = current.changed(changes, utcnow())
        await _ensure_free_for(tx, current, updated)
        await tx.users.update(updated)
        await tx.users.append_events(
            EventKind.UPDATED, [(updated, request_id, fingerprint)], updated.update_time
        )
        await tx.commit()
    log.info("user updated", user_id=user_id)
    return updated


async def _prior(
    tx: UnitOfWork, request_id: str, kind: EventKind, fingerprint: str
) -> RecordedRequest | None:
    """The change an earlier call with this request id made, if any.

    Raises RequestIdReused if that call was another request: a change of another kind (a key
    belongs to one request, whatever it asked), or one whose fingerprint differs.
    """
    if not request_id:
        return None
    prior = await tx.users.change_for_request(request_id)
    if prior is None:
        return None
    if prior.kind is not kind:
        raise RequestIdReused(request_id)
    check_replay(request_id, prior.fingerprint, fingerprint)
    return prior


def _same_user(prior: RecordedRequest, user_id: str, request_id: str) -> None:
    # Also when no fingerprint was given: a key never acts on another user.
    if prior.user.user_id != user_id:
        raise RequestIdReused(request_id)


async def _ensure_free_for(tx: UnitOfWork, current: User, updated: User) -> None:
    usernames = {updated.username} - {current.username}
    emails = {updated.email} - {current.email}
    for holder in await tx.users.holders(usernames, emails):
        if holder.user_id == current.user_id:
            continue
        if holder.username in usernames:
            raise UserTaken("username", updated.username)
        raise UserTaken("email", updated.email)


async def delete_user(
    uow: UnitOfWorkFactory, user_id: str, request_id: str = "", fingerprint: str = ""
) -> None:
    """Deletes the user; a repeated request_id with the same request succeeds again, with
    another request it raises RequestIdReused."""
    await _retrying(lambda: _delete(uow, user_id, request_id, fingerprint))


async def _delete(uow: UnitOfWorkFactory, user_id: str, request_id: str, fingerprint: str) -> None:
    async with uow() as tx:
        if prior := await _prior(tx, request_id, EventKind.DELETED, fingerprint):
            _same_user(prior, user_id, request_id)
            return
        current = await tx.users.get(user_id, for_update=True)
        if current is None:
            raise UserNotFound(user_id)
        await tx.users.delete(user_id)
        await tx.users.append_events(
            EventKind.DELETED, [(current, request_id, fingerprint)], utcnow()
        )
        await tx.commit()
    log.info("user deleted", user_id=user_id)
