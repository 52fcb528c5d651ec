"""Use cases over an in-memory unit of work."""

import asyncio
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

import pytest

from shop_grpc.errors import InvalidArgument
from shop_grpc.idempotency import RequestIdReused
from shop_grpc.pagination import PageTokens
from shop_grpc.testing import FakeDatabase, FakeUnitOfWork, UniqueViolation
from shop_user.domain import passwords
from shop_user.domain.errors import UserNotFound, UserTaken
from shop_user.domain.model import (
    Changes,
    EventKind,
    NewUser,
    Profile,
    RecordedRequest,
    User,
    UserEvent,
)
from shop_user.service_layer import services

TOKENS = PageTokens(bytes(32))


@dataclass
class Tables:
    rows: dict[str, tuple[User, str, str]] = field(default_factory=dict)
    events: list[tuple[UserEvent, str, str]] = field(default_factory=list)


class FakeUsers:
    def __init__(self, tables: Tables) -> None:
        self.rows = tables.rows
        self.events = tables.events

    async def get(self, user_id: str, *, for_update: bool = False) -> User | None:
        row = self.rows.get(user_id)
        return row[0] if row else None

    async def get_by_request_id(self, request_id: str) -> User | None:
        return next((u for u, _, r in self.rows.values() if r and r == request_id), None)

    async def holders(self, usernames: Collection[str], emails: Collection[str]) -> list[User]:
        return [u for u, _, _ in self.rows.values() if u.username in usernames or u.email in emails]

    async def add(self, entries: Sequence[tuple[User, str, str]]) -> None:
        for user, password_hash, request_id in entries:
            self.rows[user.user_id] = (user, password_hash, request_id)

    async def update(self, user: User) -> None:
        _, password_hash, request_id = self.rows[user.user_id]
        self.rows[user.user_id] = (user, password_hash, request_id)

    async def delete(self, user_id: str) -> None:
        del self.rows[user_id]

    async def page(self, after: tuple[datetime, str] | None, limit: int) -> list[User]:
        ordered = sorted(
            (u for u, _, _ in self.rows.values()), key=lambda u: (u.create_time, u.user_id)
        )
        return [u for u in ordered if after is None or (u.create_time, u.user_id) > after][:limit]

    async def append_events(
        self, kind: EventKind, entries: Sequence[tuple[User, str, str]], now: datetime
    ) -> None:
        for user, request_id, fingerprint in entries:
            event = UserEvent(len(self.events) + 1, kind, user, now)
            self.events.append((event, request_id, fingerprint))

    async def change_for_request(self, request_id: str) -> RecordedRequest | None:
        found = [(e, f) for e, r, f in self.events if r == request_id]
        return RecordedRequest(found[0][0].kind, found[0][0].user, found[0][1]) if found else None

    async def events_after(self, sequence: int, limit: int) -> list[UserEvent]:
        return [e for e, _, _ in self.events if e.sequence > sequence][:limit]


class FakeUserUnitOfWork(FakeUnitOfWork[Tables]):
    def bind(self, state: Tables) -> None:
        self.users = FakeUsers(state)


def new(
    username: str = "alice", email: str = "", request_id: str = "", password: str = "password1"
) -> NewUser:
    profile = Profile(username, email or f"{username}@example.com", username.title())
    # Stands in for the entrypoint's fingerprint of the request: same profile, same text.
    return NewUser(profile, password, request_id, repr(profile))


@pytest.fixture
def db() -> FakeDatabase[Tables]:
    return FakeDatabase(Tables())


@pytest.fixture
def uow(db: FakeDatabase[Tables]) -> partial[FakeUserUnitOfWork]:
    return partial(FakeUserUnitOfWork, db)


async def test_create_stores_a_verifiable_hash_and_logs_an_event(db, uow):
    user = await services.create_user(uow, new("alice", "Alice@Example.com"))
    assert user.email == "alice@example.com"
    _, password_hash, _ = db.state.rows[user.user_id]
    assert passwords.verify_password("password1", password_hash)
    assert [(e.kind, e.user) for e, _, _ in db.state.events] == [(EventKind.CREATED, user)]


@pytest.mark.parametrize(
    ("second", "resource_name"),
    [
        (new("alice", "other@example.com"), "username=alice"),
        (new("bob", "ALICE@example.com"), "email=alice@example.com"),
    ],
)
async def test_a_taken_username_or_email_is_already_exists(db, uow, second, resource_name):
    await services.create_user(uow, new("alice"))
    with pytest.raises(UserTaken) as info:
        await services.create_user(uow, second)
    assert info.value.resource_name == resource_name
    assert len(db.state.rows) == 1
    assert len(db.state.events) == 1


async def test_repeating_a_request_returns_the_first_user_but_reusing_its_id_is_refused(db, uow):
    first = await services.create_user(uow, new("alice", request_id="r1"))
    again = await services.create_user(uow, new("alice", request_id="r1"))
    assert again == first
    with pytest.raises(RequestIdReused):
        await services.create_user(uow, new("someone-else", request_id="r1"))
    assert len(db.state.rows) == 1


async def test_repeating_a_create_after_the_user_was_deleted_returns_what_it_created(db, uow):
    first = await services.create_user(uow, new("alice", request_id="r1"))
    await services.delete_user(uow, first.user_id)
    assert await services.create_user(uow, new("alice", request_id="r1")) == first
    assert db.state.rows == {}


async def test_get_unknown_user_is_not_found(uow):
    with pytest.raises(UserNotFound):
        await services.get_user(uow, "0b0e7c1e-2c4e-4c59-9a8a-0f6a7d1c2b3a")


async def test_update_changes_named_fields_and_logs_an_event(db, uow):
    user = await services.create_user(uow, new("alice"))
    updated = await services.update_user(uow, user.user_id, Changes(display_name="Al"))
    assert (updated.username, updated.display_name) == ("alice", "Al")
    assert await services.get_user(uow, user.user_id) == updated
    assert db.state.events[-1][0].kind == EventKind.UPDATED


async def test_update_to_a_taken_email_is_already_exists_and_writes_nothing(db, uow):
    await services.create_user(uow, new("alice"))
    bob = await services.create_user(uow, new("bob"))
    with pytest.raises(UserTaken, match="email"):
        await services.update_user(uow, bob.user_id, Changes(email="Alice@example.com"))
    assert await services.get_user(uow, bob.user_id) == bob
    assert len(db.state.events) == 2


async def test_update_keeping_its_own_username_is_fine(uow):
    alice = await services.create_user(uow, new("alice"))
    updated = await services.update_user(
        uow, alice.user_id, Changes(username="alice", email="ALICE@example.com")
    )
    assert updated.email == "alice@example.com"


async def test_repeated_update_request_applies_once(db, uow):
    def update(user_id: str, changes: Changes, key: str = "u1"):
        # The fingerprint stands in for the entrypoint's: same request, same text.
        return services.update_user(uow, user_id, changes, key, repr((user_id, changes)))

    alice = await services.create_user(uow, new("alice"))
    first = await update(alice.user_id, Changes(display_name="One"))
    again = await update(alice.user_id, Changes(display_name="One"))
    assert again == first
    assert len(db.state.events) == 2
    with pytest.raises(RequestIdReused):
        await update(alice.user_id, Changes(display_name="Two"))
    # The key of a change already made, even one the new request would repeat in effect.
    with pytest.raises(RequestIdReused):
        await update(alice.user_id, Changes(username="alice"))
    bob = await services.create_user(uow, new("bob"))
    with pytest.raises(RequestIdReused):
        await update(bob.user_id, Changes(display_name="x"))
    # A key belongs to one request, whatever it asked: deleting with it is refused too.
    with pytest.raises(RequestIdReused):
        await services.delete_user(uow, bob.user_id, "u1", "delete bob")
    assert await services.get_user(uow, bob.user_id) == bob


async def test_delete_with_a_request_id_succeeds_again_but_plain_repeat_is_not_found(db, uow):
    alice = await services.create_user(uow, new("alice"))
    await services.delete_user(uow, alice.user_id, "d1")
    await services.delete_user(uow, alice.user_id, "d1")
    with pytest.raises(UserNotFound):
        await services.delete_user(uow, alice.user_id)
    assert [e.kind for e, _, _ in db.state.events] == [EventKind.CREATED, EventKind.DELETED]
    assert db.state.events[-1][0].user == alice


async def test_list_pages_through_every_user_in_creation_order(uow):
    created = [await services.create_user(uow, new(f"user{i}", password="x" * 8)) for i in range(5)]
    seen, token = [], ""
    while True:
        page = await services.list_users(uow, TOKENS, 2, token)
        seen += page.items
        token = page.next_page_token
        if not token:
            break
    assert [u.user_id for u in seen] == [
        u.user_id for u in sorted(created, key=lambda u: (u.create_time, u.user_id))
    ]


async def test_a_foreign_page_token_is_invalid(uow):
    with pytest.raises(InvalidArgument) as info:
        await services.list_users(uow, TOKENS, 2, "garbage")
    assert info.value.violations[0].field == "page_token"


async def test_batch_creates_all_in_order(db, uow):
    users = await services.batch_create_users(uow, [new("a-1"), new("b-2"), new("c-3")])
    assert [u.username for u in users] == ["a-1", "b-2", "c-3"]
    assert [e.user for e, _, _ in db.state.events] == users
    assert db.commits == 1


async def test_batch_duplicate_within_itself_names_both_entries_and_writes_nothing(db, uow):
    with pytest.raises(UserTaken) as info:
        await services.batch_create_users(
            uow, [new("a-1"), new("b-2"), new("a-1", "z@example.com")]
        )
    assert info.value.message.startswith("requests[2]:")
    assert "requests[0]" in info.value.message
    assert db.state.rows == {}


async def test_batch_clash_with_an_existing_user_names_the_entry_and_writes_nothing(db, uow):
    await services.create_user(uow, new("taken"))
    with pytest.raises(UserTaken) as info:
        await services.batch_create_users(uow, [new("a-1"), new("b-2", "TAKEN@example.com")])
    assert info.value.message.startswith("requests[1]:")
    assert info.value.resource_name == "email=taken@example.com"
    assert len(db.state.rows) == 1


class RacingUsers(FakeUsers):
    """Its insert loses to a concurrent one that committed the same username first."""

    def __init__(self, tables: Tables, db: FakeDatabase[Tables]) -> None:
        super().__init__(tables)
        self.db = db

    async def add(self, entries: Sequence[tuple[User, str, str]]) -> None:
        winner = User.create(Profile("alice", "w@example.com", ""), entries[0][0].create_time)
        self.db.commit_elsewhere(lambda t: t.rows.update({winner.user_id: (winner, "h", "")}))
        raise UniqueViolation("users.username")


class RacingUnitOfWork(FakeUserUnitOfWork):
    def bind(self, state: Tables) -> None:
        self.users = RacingUsers(state, self.db)


async def test_losing_a_race_on_a_unique_key_is_already_exists(db):
    uow = partial(RacingUnitOfWork, db)
    with pytest.raises(UserTaken) as info:
        await services.create_user(uow, new("alice"))
    assert info.value.resource_name == "username=alice"


async def test_watch_replays_after_a_sequence_then_waits_for_more(uow):
    users = [await services.create_user(uow, new(f"user{i}")) for i in range(3)]
    woken = asyncio.Event()

    async def wait() -> None:
        await woken.wait()
        woken.clear()

    stream = services.watch_users(uow, wait, after_sequence=1)
    assert [(await anext(stream)).user for _ in range(2)] == users[1:]
    pending = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.01)
    assert not pending.done()
    await services.delete_user(uow, users[0].user_id)
    woken.set()
    event = await asyncio.wait_for(pending, 1)
    assert (event.sequence, event.kind, event.user) == (4, EventKind.DELETED, users[0])
    await stream.aclose()
