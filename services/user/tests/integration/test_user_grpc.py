"""The user service over real gRPC on loopback, on SQLite and PostgreSQL."""

import asyncio
from dataclasses import dataclass
from functools import partial

import grpc
import jwt
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.json_format import MessageToDict
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from sqlalchemy import func, select

from shop.user.v1 import user_pb2, user_pb2_grpc
from shop_grpc import errors, testing, tokens
from shop_grpc.changes import ChangeSignal
from shop_grpc.pagination import PageTokens
from shop_grpc.status import from_rpc_error
from shop_grpc.storage import Database
from shop_grpc.testing import rpc_fails
from shop_user.adapters.orm import user_events, users
from shop_user.adapters.unit_of_work import SqlUnitOfWork
from shop_user.domain.throttle import Limit
from shop_user.entrypoints.grpc import SignIn, registration
from shop_user.service_layer.sign_in import Throttles

PASSWORD = "correct horse battery"
UNKNOWN_ID = "0b0e7c1e-2c4e-4c59-9a8a-0f6a7d1c2b3a"


@dataclass
class Api:
    stub: user_pb2_grpc.UserServiceStub
    db: Database
    responses: list

    async def call(self, method: str, request):
        response = await getattr(self.stub, method)(request, timeout=10)
        self.responses.append(response)
        return response

    async def create(self, username: str, email: str = "", **fields) -> user_pb2.User:
        user = user_pb2.User(
            username=username,
            email=email or f"{username}@example.com",
            display_name=username.title(),
        )
        return await self.call(
            "CreateUser", user_pb2.CreateUserRequest(user=user, password=PASSWORD, **fields)
        )

    async def rows(self) -> tuple[int, int]:
        async with self.db.session() as session:
            counts = [
                await session.scalar(select(func.count()).select_from(t))
                for t in (users, user_events)
            ]
        return counts[0], counts[1]


@pytest.fixture
def keys(tmp_path) -> testing.TokenKeys:
    return testing.make_token_keys(tmp_path / "keys")


@pytest.fixture
def signing(keys) -> SignIn:
    return SignIn(tokens.KeyDirectory(keys.private, check_seconds=0), Throttles.default())


@pytest.fixture
async def api(db, database_url, signing):
    settings = testing.test_settings("user", database_url)
    changes = ChangeSignal(poll_seconds=0.2)
    uow = partial(SqlUnitOfWork, db, changes)
    async with testing.serving(
        settings, [registration(uow, changes, await PageTokens.load(db), signing)]
    ) as channel:
        api = Api(user_pb2_grpc.UserServiceStub(channel), db, [])
        yield api
        # Nothing any test received may carry the password or its hash.
        for response in api.responses:
            raw = response.SerializeToString()
            assert PASSWORD.encode() not in raw
            assert b"scrypt$" not in raw


async def test_create_then_get(api):
    created = await api.create("alice", "Alice@Example.com")
    assert created.user_id
    assert created.email == "alice@example.com"
    assert created.create_time.seconds > 0
    assert created.create_time == created.update_time
    got = await api.call("GetUser", user_pb2.GetUserRequest(user_id=created.user_id))
    assert got == created


async def test_get_unknown_is_not_found(api):
    with rpc_fails(grpc.StatusCode.NOT_FOUND) as failed:
        await api.stub.GetUser(user_pb2.GetUserRequest(user_id=UNKNOWN_ID))
    assert isinstance(failed.error, errors.NotFound)
    assert (failed.error.resource_type, failed.error.resource_name) == ("user", UNKNOWN_ID)


async def test_update_changes_only_masked_fields(api):
    alice = await api.create("alice")
    request = user_pb2.UpdateUserRequest(
        user=user_pb2.User(user_id=alice.user_id, username="ignored", display_name="Alice L."),
        update_mask=FieldMask(paths=["display_name"]),
    )
    updated = await api.call("UpdateUser", request)
    assert (updated.username, updated.display_name) == ("alice", "Alice L.")
    assert updated.update_time.ToDatetime() > alice.update_time.ToDatetime()
    assert await api.call("GetUser", user_pb2.GetUserRequest(user_id=alice.user_id)) == updated


async def test_update_with_bad_mask_or_values_is_invalid_and_changes_nothing(api):
    alice = await api.create("alice")
    for mask, user, field in [
        ([], user_pb2.User(user_id=alice.user_id), "update_mask"),
        (["password"], user_pb2.User(user_id=alice.user_id), "update_mask"),
        (["email"], user_pb2.User(user_id=alice.user_id, email="not-an-email"), "user.email"),
    ]:
        request = user_pb2.UpdateUserRequest(user=user, update_mask=FieldMask(paths=mask))
        with rpc_fails(grpc.StatusCode.INVALID_ARGUMENT) as failed:
            await api.stub.UpdateUser(request)
        assert failed.fields == [field]
    assert await api.call("GetUser", user_pb2.GetUserRequest(user_id=alice.user_id)) == alice
    assert await api.rows() == (1, 1)


async def test_update_to_a_taken_username_is_already_exists(api):
    await api.create("alice")
    bob = await api.create("bob")
    request = user_pb2.UpdateUserRequest(
        user=user_pb2.User(user_id=bob.user_id, username="alice"),
        update_mask=FieldMask(paths=["username"]),
    )
    with rpc_fails(grpc.StatusCode.ALREADY_EXISTS) as failed:
        await api.stub.UpdateUser(request)
    assert failed.error.resource_name == "username=alice"


async def test_update_unknown_is_not_found(api):
    request = user_pb2.UpdateUserRequest(
        user=user_pb2.User(user_id=UNKNOWN_ID, display_name="x"),
        update_mask=FieldMask(paths=["display_name"]),
    )
    with rpc_fails(grpc.StatusCode.NOT_FOUND):
        await api.stub.UpdateUser(request)


async def test_delete_removes_the_user_and_a_repeated_request_succeeds_again(api):
    alice = await api.create("alice")
    delete = user_pb2.DeleteUserRequest(user_id=alice.user_id, request_id="del-1")
    await api.call("DeleteUser", delete)
    with rpc_fails(grpc.StatusCode.NOT_FOUND):
        await api.stub.GetUser(user_pb2.GetUserRequest(user_id=alice.user_id))
    await api.call("DeleteUser", delete)
    with rpc_fails(grpc.StatusCode.NOT_FOUND):
        await api.stub.DeleteUser(user_pb2.DeleteUserRequest(user_id=alice.user_id))
    assert await api.rows() == (0, 2)


async def test_list_pages_in_creation_order(api):
    created = [await api.create(f"user{i}") for i in range(7)]
    seen, token, pages = [], "", 0
    while True:
        page = await api.call("ListUsers", user_pb2.ListUsersRequest(page_size=3, page_token=token))
        seen += [u.user_id for u in page.users]
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert seen == [u.user_id for u in created]
    assert pages == 3


async def test_list_rejects_a_bad_page_token_and_size(api):
    with rpc_fails(grpc.StatusCode.INVALID_ARGUMENT) as failed:
        await api.stub.ListUsers(user_pb2.ListUsersRequest(page_token="bogus"))
    assert failed.fields == ["page_token"]
    with rpc_fails(grpc.StatusCode.INVALID_ARGUMENT) as failed:
        await api.stub.ListUsers(user_pb2.ListUsersRequest(page_size=501))
    assert failed.fields == ["page_size"]


async def test_invalid_create_names_every_field_and_writes_nothing(api):
    request = user_pb2.CreateUserRequest(
        user=user_pb2.User(username="No Spaces", email="nope", display_name="x" * 101),
        password="short",
    )
    bad_fields = {"user.username", "user.email", "user.display_name", "password"}
    with rpc_fails(grpc.StatusCode.INVALID_ARGUMENT, fields=bad_fields):
        await api.stub.CreateUser(request)
    assert await api.rows() == (0, 0)


@pytest.mark.parametrize(
    ("username", "email", "resource_name"),
    [
        ("alice", "other@example.com", "username=alice"),
        ("bob", "ALICE@example.COM", "email=alice@example.com"),
    ],
)
async def test_duplicate_username_or_email_is_already_exists(api, username, email, resource_name):
    await api.create("alice")
    with rpc_fails(grpc.StatusCode.ALREADY_EXISTS) as failed:
        await api.create(username, email)
    assert (failed.error.resource_type, failed.error.resource_name) == ("user", resource_name)
    assert await api.rows() == (1, 1)


async def test_concurrent_creates_of_one_username_let_exactly_one_win(api):
    results = await asyncio.gather(
        *(api.create("alice", f"alice{i}@example.com") for i in range(6)), return_exceptions=True
    )
    winners = [r for r in results if isinstance(r, user_pb2.User)]
    losers = [from_rpc_error(r) for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(winners) == 1
    assert len(losers) == 5
    assert all(
        isinstance(e, errors.AlreadyExists) and e.resource_name == "username=alice" for e in losers
    )
    assert await api.rows() == (1, 1)


async def test_concurrent_creates_with_one_request_id_create_one_user(api):
    results = await asyncio.gather(*(api.create("alice", request_id="req-1") for _ in range(4)))
    assert len({r.user_id for r in results}) == 1
    assert await api.rows() == (1, 1)


async def test_a_request_id_reused_for_another_user_is_refused_and_writes_nothing(api):
    alice = await api.create("alice", request_id="req-1")
    with rpc_fails(grpc.StatusCode.ALREADY_EXISTS, reason="REQUEST_ID_REUSED") as failed:
        await api.create("mallory", request_id="req-1")
    assert alice.user_id not in failed.details
    assert await api.rows() == (1, 1)


async def test_watch_streams_changes_and_replays_after_a_sequence(api):
    watch = api.stub.WatchUsers(user_pb2.WatchUsersRequest())
    try:
        alice = await api.create("alice")
        update = user_pb2.UpdateUserRequest(
            user=user_pb2.User(user_id=alice.user_id, display_name="A"),
            update_mask=FieldMask(paths=["display_name"]),
        )
        updated = await api.call("UpdateUser", update)
        await api.call("DeleteUser", user_pb2.DeleteUserRequest(user_id=alice.user_id))
        events = [await asyncio.wait_for(watch.read(), 5) for _ in range(3)]
    finally:
        watch.cancel()
    api.responses += events
    K = user_pb2.UserEvent
    assert [e.kind for e in events] == [K.KIND_CREATED, K.KIND_UPDATED, K.KIND_DELETED]
    assert [e.user for e in events] == [alice, updated, updated]
    assert events[0].sequence < events[1].sequence < events[2].sequence
    assert all(e.event_time.seconds > 0 for e in events)

    replay = api.stub.WatchUsers(user_pb2.WatchUsersRequest(after_sequence=events[0].sequence))
    try:
        again = [await asyncio.wait_for(replay.read(), 5) for _ in range(2)]
    finally:
        replay.cancel()
    assert again == events[1:]


async def test_watch_rejects_a_negative_sequence(api):
    watch = api.stub.WatchUsers(user_pb2.WatchUsersRequest(after_sequence=-1))
    with rpc_fails(grpc.StatusCode.INVALID_ARGUMENT):
        await watch.read()


def batch_entry(username: str, email: str = "", **fields) -> user_pb2.BatchCreateUsersRequest:
    user = user_pb2.User(username=username, email=email or f"{username}@example.com")
    return user_pb2.BatchCreateUsersRequest(
        request=user_pb2.CreateUserRequest(user=user, password=PASSWORD, **fields)
    )


async def test_batch_creates_every_user_in_order(api):
    entries = [batch_entry(f"user{i}") for i in range(5)]
    response = await api.call("BatchCreateUsers", iter(entries))
    assert [u.username for u in response.users] == [f"user{i}" for i in range(5)]
    listed = await api.call("ListUsers", user_pb2.ListUsersRequest())
    assert {u.user_id for u in listed.users} == {u.user_id for u in response.users}


async def test_batch_with_an_invalid_entry_is_rejected_whole(api):
    entries = [batch_entry(f"user{i}") for i in range(5)]
    entries[3].request.user.email = "broken"
    with rpc_fails(grpc.StatusCode.INVALID_ARGUMENT) as failed:
        await api.stub.BatchCreateUsers(iter(entries))
    assert failed.fields == ["requests[3].request.user.email"]
    assert await api.rows() == (0, 0)


async def test_batch_duplicates_in_itself_or_the_database_are_rejected_whole(api):
    await api.create("taken")
    inside = [batch_entry("a-1"), batch_entry("b-2"), batch_entry("c-3", "A-1@example.com")]
    with rpc_fails(grpc.StatusCode.ALREADY_EXISTS) as failed:
        await api.stub.BatchCreateUsers(iter(inside))
    assert "requests[2]" in failed.error.message
    assert failed.error.resource_name == "email=a-1@example.com"
    against_db = [batch_entry("a-1"), batch_entry("taken", "new@example.com")]
    with rpc_fails(grpc.StatusCode.ALREADY_EXISTS) as failed:
        await api.stub.BatchCreateUsers(iter(against_db))
    assert "requests[1]" in failed.error.message
    assert failed.error.resource_name == "username=taken"
    assert await api.rows() == (1, 1)


async def test_batch_over_1000_entries_is_rejected(api):
    # Invalid passwords would be reported too; the size limit must win before any hashing.
    entries = (batch_entry(f"user{i}") for i in range(1001))
    with rpc_fails(grpc.StatusCode.INVALID_ARGUMENT) as failed:
        await api.stub.BatchCreateUsers(entries)
    assert failed.fields == ["requests"]
    assert await api.rows() == (0, 0)


async def test_repeating_a_batch_with_request_ids_returns_the_same_users(api):
    entries = [batch_entry(f"user{i}", request_id=f"req-{i}") for i in range(3)]
    first = await api.call("BatchCreateUsers", iter(entries))
    again = await api.call("BatchCreateUsers", iter(entries))
    assert again == first
    assert await api.rows() == (3, 3)


async def test_a_mask_naming_part_of_a_field_is_refused_and_writes_nothing(api):
    alice = await api.create("alice")
    before = await api.rows()
    for path in ("display_name.x", "username.anything", "email.a.b.c"):
        request = user_pb2.UpdateUserRequest(
            user=user_pb2.User(user_id=alice.user_id, display_name="CHANGED"),
            update_mask=FieldMask(paths=[path]),
        )
        with rpc_fails(grpc.StatusCode.INVALID_ARGUMENT) as failed:
            await api.call("UpdateUser", request)
        assert failed.fields == ["update_mask"]
    assert await api.rows() == before


async def test_a_key_used_to_update_one_user_cannot_delete_another(api):
    alice, bob = await api.create("alice"), await api.create("bob")
    update = user_pb2.UpdateUserRequest(
        user=user_pb2.User(user_id=alice.user_id, display_name="A"),
        update_mask=FieldMask(paths=["display_name"]),
        request_id="key-1",
    )
    await api.call("UpdateUser", update)
    other_mask = user_pb2.UpdateUserRequest(
        user=user_pb2.User(user_id=alice.user_id, username=alice.username),
        update_mask=FieldMask(paths=["username"]),
        request_id="key-1",
    )
    delete_bob = user_pb2.DeleteUserRequest(user_id=bob.user_id, request_id="key-1")
    for reused in (("UpdateUser", other_mask), ("DeleteUser", delete_bob)):
        with rpc_fails(grpc.StatusCode.ALREADY_EXISTS, reason="REQUEST_ID_REUSED"):
            await api.call(*reused)
    assert (await api.call("GetUser", user_pb2.GetUserRequest(user_id=bob.user_id))) == bob


# -- signing in ----------------------------------------------------------------------------


def login(name: str, password: str = PASSWORD) -> user_pb2.LoginRequest:
    return user_pb2.LoginRequest(login=name, password=password)


async def test_login_by_username_or_email_gives_a_token_for_that_user(api, keys):
    alice = await api.create("alice", "Alice@Example.com")

    by_name = await api.call("Login", login("alice"))
    by_email = await api.call("Login", login("ALICE@example.com"))

    for signed_in in (by_name, by_email):
        assert signed_in.user_id == alice.user_id and signed_in.token_type == "Bearer"
        claims = tokens.verify(tokens.read_ring(keys.public), signed_in.access_token)
        assert claims.subject == alice.user_id
        assert claims.expire_time == signed_in.expire_time.ToDatetime(
            tzinfo=claims.expire_time.tzinfo
        )


async def test_wrong_credentials_are_unauthenticated_without_saying_which_part(api):
    await api.create("alice")

    answers = []
    for request in (login("alice", "wrong password"), login("nobody"), login("nobody", "x")):
        with rpc_fails(grpc.StatusCode.UNAUTHENTICATED) as failed:
            await api.stub.Login(request, timeout=10)
        answers.append((failed.details, failed.rpc_error.trailing_metadata()))

    assert answers[0] == answers[1] == answers[2]


async def test_an_unknown_account_costs_as_long_as_a_wrong_password(api):
    await api.create("alice")

    async def seconds(request: user_pb2.LoginRequest) -> float:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with rpc_fails(grpc.StatusCode.UNAUTHENTICATED):
            await api.stub.Login(request, timeout=10)
        return loop.time() - started

    # Medians of a few tries each: both pay one scrypt (tens of ms); without the stand-in
    # hash the unknown account would answer in about a millisecond.
    known = sorted([await seconds(login("alice", f"wrong {i}")) for i in range(3)])[1]
    unknown = sorted([await seconds(login(f"nobody{i}")) for i in range(3)])[1]
    assert unknown > known / 3


async def test_repeated_failures_for_an_account_are_resource_exhausted_with_a_retry_delay(api):
    await api.create("alice")
    changes = testing.MetricChanges()
    for i in range(5):
        with rpc_fails(grpc.StatusCode.UNAUTHENTICATED):
            await api.stub.Login(login("alice", f"guess {i}"), timeout=10)
    with rpc_fails(grpc.StatusCode.UNAUTHENTICATED):
        await api.stub.Login(login("alice", "guess 5"), timeout=10)  # the sixth starts the wait

    # Even the right password waits: a throttled try teaches nothing.
    with rpc_fails(grpc.StatusCode.RESOURCE_EXHAUSTED, reason="TOO_MANY_FAILED_SIGN_INS") as failed:
        await api.stub.Login(login("alice"), timeout=10)

    assert isinstance(failed.error, errors.Unavailable)  # what a client maps it to: wait, retry
    rich = rpc_status.from_call(failed.rpc_error)
    retry = error_details_pb2.RetryInfo()
    assert rich is not None and any(d.Unpack(retry) for d in rich.details if d.Is(retry.DESCRIPTOR))
    assert 0 < retry.retry_delay.ToTimedelta().total_seconds() <= 1
    # Her e-mail is counted apart: were it throttled with her username, whether it is hers
    # would show (an unknown e-mail is never throttled by her failures).
    assert (await api.call("Login", login("alice@example.com"))).user_id
    # Another account from the same caller is not held back by alice's.
    await api.create("bob")
    assert (await api.call("Login", login("bob"))).user_id
    assert changes.of("shop_user_sign_ins_total", outcome="REFUSED") == 6
    assert changes.of("shop_user_sign_ins_total", outcome="THROTTLED") == 1
    assert changes.of("shop_user_sign_ins_total", outcome="SIGNED_IN") == 2


async def test_many_failures_from_one_caller_slow_that_caller_down(api, signing):
    signing.throttles.callers.limit = Limit(free_failures=2, window_seconds=900)
    await api.create("carol")
    for i in range(3):
        with rpc_fails(grpc.StatusCode.UNAUTHENTICATED):
            await api.stub.Login(login(f"user{i}"), timeout=10)

    with rpc_fails(grpc.StatusCode.RESOURCE_EXHAUSTED):
        await api.stub.Login(login("carol"), timeout=10)


async def test_a_front_end_names_its_clients_so_one_clients_failures_hold_back_no_other(
    api, signing
):
    signing.throttles.callers.limit = Limit(free_failures=2, window_seconds=900)
    await api.create("carol")
    attacker = (("x-forwarded-for", "203.0.113.7, 10.0.0.1"),)
    for i in range(3):
        with rpc_fails(grpc.StatusCode.UNAUTHENTICATED):
            await api.stub.Login(login(f"user{i}"), metadata=attacker, timeout=10)
    with rpc_fails(grpc.StatusCode.RESOURCE_EXHAUSTED):
        await api.stub.Login(login("carol"), metadata=attacker, timeout=10)

    # Carol, through the same front end (the same peer), from her own address.
    carol = (("x-forwarded-for", "198.51.100.20"),)
    response = await api.stub.Login(login("carol"), metadata=carol, timeout=10)
    assert response.user_id


async def test_login_without_a_signing_key_is_failed_precondition(api, keys):
    await api.create("alice")
    for path in keys.private.iterdir():
        path.unlink()

    with rpc_fails(grpc.StatusCode.FAILED_PRECONDITION, reason="SIGNING_KEY_MISSING"):
        await api.stub.Login(login("alice"), timeout=10)


async def test_bad_login_requests_are_invalid_argument(api):
    with rpc_fails(grpc.StatusCode.INVALID_ARGUMENT, fields={"login", "password"}):
        await api.stub.Login(user_pb2.LoginRequest(login="", password=""), timeout=10)


async def test_the_jwks_lists_every_verifying_key_and_new_tokens_use_the_newest(api, keys):
    await api.create("alice")
    keys.rotate("20270101T000000Z")

    jwks = await api.call("GetJsonWebKeySet", user_pb2.GetJsonWebKeySetRequest())
    token = (await api.call("Login", login("alice"))).access_token

    assert [key.kid for key in jwks.keys] == ["20260101T000000Z", "20270101T000000Z"]
    assert {(key.kty, key.crv, key.alg, key.use) for key in jwks.keys} == {
        ("OKP", "Ed25519", "EdDSA", "sig")
    }
    published = {
        key.kid: jwt.PyJWK.from_dict(MessageToDict(key, preserving_proto_field_name=True))
        for key in jwks.keys
    }
    header = jwt.get_unverified_header(token)
    assert header["kid"] == "20270101T000000Z"
    claims = jwt.decode(
        token,
        published[header["kid"]],
        algorithms=["EdDSA"],
        audience=tokens.AUDIENCE,
        issuer=tokens.ISSUER,
    )
    assert claims["sub"]


async def test_guesses_sent_all_at_once_are_throttled_like_guesses_in_a_row(api):
    await api.create("alice")

    async def guess(i: int) -> grpc.StatusCode:
        try:
            await api.stub.Login(login("alice", f"guess {i}"), timeout=20)
        except grpc.aio.AioRpcError as error:
            return error.code()
        return grpc.StatusCode.OK

    codes = await asyncio.gather(*(guess(i) for i in range(10)))

    # Five free failures, the sixth starts the wait: the other four are refused unchecked.
    assert codes.count(grpc.StatusCode.UNAUTHENTICATED) == 6
    assert codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) == 4
