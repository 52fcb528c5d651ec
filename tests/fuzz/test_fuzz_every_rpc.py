"""Every RPC of every service, with requests built from its message descriptors.

For each method of each shop service, hypothesis builds requests from the method's input
message descriptor: every string field gets empty, huge, Unicode, control-character and
SQL-looking text as well as values that really exist in the service (so calls get past the
first check), every integer its boundary values, repeated fields up to past their limits,
oneofs one member or none, page tokens real, forged and garbled ones, field masks real and
made-up paths, request ids that repeat across calls. Streams get several such messages.

What every client relies on, checked on each call:
- the status is never INTERNAL, UNKNOWN, DATA_LOSS or UNIMPLEMENTED, nor a retryable
  UNAVAILABLE or ABORTED (nothing here is unavailable: the four services run in this process),
  nor RESOURCE_EXHAUSTED (no request is near a size limit; an answer too large for the client's
  trailers would show as that);
- INVALID_ARGUMENT carries a ``BadRequest`` naming at least one field;
- the answer comes before the call's deadline;
- a call that is refused (any status but OK) writes nothing in any service's database.

Every call also carries drawn ``authorization`` metadata — none, another scheme, garbage, a
forged, unsigned or wrongly signed token, or a real token of a seeded customer — so the
customer check meets what clients may send; only Login may answer RESOURCE_EXHAUSTED, when
the fuzzed failures have throttled an account, and then with its reason and a RetryInfo.

The four services run in-process over loopback on one engine per module run: SQLite, and
PostgreSQL when SHOP_TEST_POSTGRES_URL is set. SHOP_FUZZ_EXAMPLES sets the examples per RPC
(default 10, which keeps the default run short; CI sets more).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import importlib
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_asyncio
import structlog
from google.protobuf import descriptor as d
from google.protobuf import message_factory
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import MetaData, select

from shop.common.v1 import money_pb2
from shop.inventory.v1 import inventory_pb2, inventory_pb2_grpc
from shop.order.v1 import order_pb2, order_pb2_grpc
from shop.payment.v1 import payment_pb2, payment_pb2_grpc
from shop.user.v1 import user_pb2, user_pb2_grpc
from shop_grpc import registry, status
from shop_grpc.config import Env
from shop_grpc.errors import InvalidArgument
from shop_grpc.server import GrpcServer
from shop_grpc.service import Storage
from shop_grpc.storage import Database
from shop_grpc.testing import (
    ENGINES,
    TokenKeys,
    fresh_database_url,
    make_token_keys,
    test_settings,
)

pytestmark = [pytest.mark.fuzz, pytest.mark.asyncio(loop_scope="module")]

EXAMPLES = int(os.environ.get("SHOP_FUZZ_EXAMPLES", "10"))
DEADLINE_SECONDS = 5.0
# Watches stream until cancelled: a short deadline ends each one.
WATCH_SECONDS = 0.5
# How late past its deadline an answer may arrive: scheduling on a loaded 2-core machine.
LATE_SECONDS = 1.5
FORBIDDEN = {
    # Every request here is far below any size limit: RESOURCE_EXHAUSTED would mean an answer
    # too large for the client to read (its trailers past grpc's metadata limit).
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.DATA_LOSS,
    grpc.StatusCode.UNIMPLEMENTED,
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.ABORTED,
}
# Calls that wait by design: a watch streams until cancelled, CreateOrder and CancelOrder wait
# for a final state until just before the deadline and then say DEADLINE_EXCEEDED themselves.
WAITING = {"WatchOrder", "WatchStock", "WatchUsers", "CreateOrder", "CancelOrder", "Checkout"}

SERVICES = {spec.name: spec.descriptor for spec in registry.services().values()}
# Deleting users goes last, so the other methods meet the seeded users as they were.
METHODS = sorted(
    [(name, method) for name, service in SERVICES.items() for method in service.methods],
    key=lambda pair: pair[1].name == "DeleteUser",
)


# --- strategies from descriptors -----------------------------------------------------------

EDGE_STRINGS = [
    "",
    " ",
    "é",
    "\x00",
    "a\x00b",
    "\n",
    "x\n",
    "\t",
    "\x7f",
    "\u0085",
    "\u202e",
    "\ufeff",
    "😀",
    "²" * 16,
    "4242424242424²42",
    "٣٣٣",
    "\uff11\uff12\uff13",
    "ABC",
    "USD",
    "usd",
    "' OR '1'='1",
    "%_\\",
    "0b6e7d3c-9a51-4c8f-8f2e-5d0f3c2a1b9e",
    "0B6E7D3C-9A51-4C8F-8F2E-5D0F3C2A1B9E",
    "0b6e7d3c-9a51-4c8f-8f2e-5d0f3c2a1b9e\n",
    "a" * 63,
    "a" * 64,
    "a" * 65,
    "a" * 129,
    "a" * 255,
    "a" * 2001,
    "a" * 10_000,
]
INT_EDGES = [0, 1, -1, 2, 3, 12, 13, 100, 101, 500, 501, 9_999, 10_000, 10_001]
INT32_EDGES = [*INT_EDGES, 2**31 - 1, -(2**31)]
INT64_EDGES = [*INT32_EDGES, 10**9, 10**9 + 1, 10**15, 10**15 + 1, 2**63 - 1, -(2**63)]
SIGNED = {
    d.FieldDescriptor.TYPE_INT32: (INT32_EDGES, -(2**31), 2**31 - 1),
    d.FieldDescriptor.TYPE_SINT32: (INT32_EDGES, -(2**31), 2**31 - 1),
    d.FieldDescriptor.TYPE_SFIXED32: (INT32_EDGES, -(2**31), 2**31 - 1),
    d.FieldDescriptor.TYPE_INT64: (INT64_EDGES, -(2**63), 2**63 - 1),
    d.FieldDescriptor.TYPE_SINT64: (INT64_EDGES, -(2**63), 2**63 - 1),
    d.FieldDescriptor.TYPE_SFIXED64: (INT64_EDGES, -(2**63), 2**63 - 1),
}
UNSIGNED = {
    d.FieldDescriptor.TYPE_UINT32: 2**32 - 1,
    d.FieldDescriptor.TYPE_FIXED32: 2**32 - 1,
    d.FieldDescriptor.TYPE_UINT64: 2**64 - 1,
    d.FieldDescriptor.TYPE_FIXED64: 2**64 - 1,
}
MAX_DEPTH = 4


def message_class(descriptor: d.Descriptor) -> type[Message]:
    return message_factory.GetMessageClass(descriptor)


def strings(name: str, pools: dict[str, list[Any]]) -> st.SearchStrategy[str]:
    choices = [
        st.sampled_from(EDGE_STRINGS),
        st.text(max_size=40),
        st.text(st.characters(codec="ascii"), max_size=70),
    ]
    if pools.get(name):
        # Real values most of the time: a request should often get past the first check.
        choices += [st.sampled_from(pools[name])] * 6
    return st.one_of(choices)


def scalar(f: d.FieldDescriptor, pools: dict[str, list[Any]]) -> st.SearchStrategy[Any]:
    if f.type == d.FieldDescriptor.TYPE_STRING:
        return strings(f.name, pools)
    if f.type == d.FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=32)
    if f.type == d.FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if f.type == d.FieldDescriptor.TYPE_ENUM:
        # Open enums: numbers the API does not name arrive too.
        return st.sampled_from([v.number for v in f.enum_type.values] + [99, -1])
    if f.type in SIGNED:
        edges, low, high = SIGNED[f.type]
        real = [st.sampled_from(pools[f.name])] * 2 if pools.get(f.name) else []
        return st.one_of(st.sampled_from(edges), st.integers(low, high), *real)
    if f.type in UNSIGNED:
        edges = [e for e in INT64_EDGES if 0 <= e <= UNSIGNED[f.type]]
        return st.one_of(st.sampled_from(edges), st.integers(0, UNSIGNED[f.type]))
    raise AssertionError(f"no strategy for {f.full_name} (type {f.type}): the API grew a type")


def field_values(
    f: d.FieldDescriptor, pools: dict[str, list[Any]], depth: int
) -> st.SearchStrategy[Any]:
    if f.message_type is not None and f.message_type.GetOptions().map_entry:
        key, value = f.message_type.fields_by_name["key"], f.message_type.fields_by_name["value"]
        return st.dictionaries(scalar(key, pools), single(value, pools, depth), max_size=3)
    one = single(f, pools, depth)
    if not f.is_repeated:
        return one
    # Mostly short lists; now and then one past the largest limit the API sets (100).
    return st.one_of(
        st.lists(one, max_size=4),
        st.lists(one, max_size=4),
        st.lists(one, min_size=101, max_size=101),
    )


def single(f: d.FieldDescriptor, pools: dict[str, list[Any]], depth: int) -> st.SearchStrategy[Any]:
    if f.message_type is None:
        return scalar(f, pools)
    return messages(f.message_type, pools, depth + 1)


def messages(
    descriptor: d.Descriptor, pools: dict[str, list[Any]], depth: int = 0
) -> st.SearchStrategy[Message]:
    """Messages of `descriptor`, each field set or left unset, at most one member per oneof."""
    cls = message_class(descriptor)
    if depth > MAX_DEPTH:
        return st.just(cls())
    loose = [f for f in descriptor.fields if f.containing_oneof is None]
    oneofs = list(descriptor.oneofs)

    @st.composite
    def build(draw: st.DrawFn) -> Message:
        values: dict[str, Any] = {}
        for f in loose:
            if draw(st.booleans()):
                values[f.name] = draw(field_values(f, pools, depth))
        for oneof in oneofs:
            member = draw(st.sampled_from([None, *oneof.fields]))
            if member is not None:
                values[member.name] = draw(field_values(member, pools, depth))
        return cls(**values)

    return build()


def plausible(
    descriptor: d.Descriptor, pools: dict[str, list[Any]], depth: int = 0
) -> st.SearchStrategy[Message]:
    """Messages of `descriptor` with every field set to a value that may well be right: the
    real values a field's name has in `pools`, else short plain ones. They get past the
    checks, to the code and the storage behind."""
    cls = message_class(descriptor)
    if depth > MAX_DEPTH:
        return st.just(cls())

    def value(f: d.FieldDescriptor) -> st.SearchStrategy[Any]:
        if f.message_type is not None:
            one: st.SearchStrategy[Any] = plausible(f.message_type, pools, depth + 1)
        elif pools.get(f.name):
            one = st.sampled_from(pools[f.name])
        elif f.type == d.FieldDescriptor.TYPE_STRING:
            one = st.text("abcdefghij", min_size=1, max_size=8)
        elif f.type == d.FieldDescriptor.TYPE_ENUM:
            one = st.sampled_from([v.number for v in f.enum_type.values if v.number])
        else:
            one = (
                scalar(f, {f.name: [1, 2, 3]})
                if f.type != d.FieldDescriptor.TYPE_BOOL
                else (st.booleans())
            )
        return st.lists(one, min_size=1, max_size=2) if f.is_repeated else one

    loose = [f for f in descriptor.fields if f.containing_oneof is None]

    @st.composite
    def build(draw: st.DrawFn) -> Message:
        values = {f.name: draw(value(f)) for f in loose if draw(st.integers(0, 15))}
        for oneof in descriptor.oneofs:
            member = draw(st.sampled_from(list(oneof.fields)))
            values[member.name] = draw(value(member))
        return cls(**values)

    return build()


def one_field_off(
    descriptor: d.Descriptor, pools: dict[str, list[Any]]
) -> st.SearchStrategy[Message]:
    """A plausible message with one of its fields set to anything at all."""

    @st.composite
    def build(draw: st.DrawFn) -> Message:
        message = draw(plausible(descriptor, pools))
        f = draw(st.sampled_from(list(descriptor.fields)))
        bad = draw(field_values(f, pools, 0))
        message.ClearField(f.name)
        if f.is_repeated:
            getattr(message, f.name).extend(bad)
        elif f.message_type is not None:
            getattr(message, f.name).CopyFrom(bad)
        else:
            setattr(message, f.name, bad)
        return message

    return build()


def requests(
    method: d.MethodDescriptor, pools: dict[str, list[Any]]
) -> st.SearchStrategy[Message | list[Message]]:
    """Requests of every kind in about equal parts: anything at all, plausible ones, and
    plausible ones but for one field."""
    descriptor = method.input_type
    kinds = [messages(descriptor, pools), plausible(descriptor, pools)]
    if descriptor.fields:  # a message without fields has none to set off
        kinds.append(one_field_off(descriptor, pools))
    one = st.one_of(*kinds)
    if method.client_streaming:
        return st.lists(one, max_size=5)
    return one


# --- the services, in-process -------------------------------------------------------------


@dataclass
class Stack:
    channels: dict[str, grpc.aio.Channel]
    databases: dict[str, tuple[Database, MetaData]]
    keys: TokenKeys
    pools: dict[str, list[Any]] = field(default_factory=dict)
    busy: bool = True
    """Whether an accepted call may have left work going on (a saga), to wait out first."""

    async def settle(self) -> dict[str, str]:
        """The databases' snapshot once nothing changes them any more (up to 10 s): an accepted
        call may have started work that goes on after its answer, an order's saga."""
        now = await self.snapshot()
        for _ in range(100 if self.busy else 0):
            await asyncio.sleep(0.1)
            now, before = await self.snapshot(), now
            if now == before:
                break
        else:
            if self.busy:
                raise AssertionError("the services kept writing for 10 s after a call")
        self.busy = False
        return now

    async def snapshot(self) -> dict[str, str]:
        """A digest of every row of every table, per service."""
        digests = {}
        for name, (db, tables) in self.databases.items():
            digest = hashlib.sha256()
            async with db.session(readonly=True) as session:
                for table in tables.sorted_tables:
                    rows = (await session.execute(select(table))).all()
                    for row in sorted(repr(tuple(row)) for row in rows):
                        digest.update(row.encode())
            digests[name] = digest.hexdigest()
        return digests


@contextlib.asynccontextmanager
async def engine_urls(engine: str, root: Path) -> AsyncIterator[dict[str, str]]:
    """A fresh database of `engine` for every service."""
    async with contextlib.AsyncExitStack() as stack:
        yield {
            name: await stack.enter_async_context(fresh_database_url(engine, root / name))
            for name in SERVICES
        }


async def start(server: GrpcServer, stack: contextlib.AsyncExitStack) -> str:
    port = await server.start()
    await server.set_serving(True)
    stack.push_async_callback(server.stop, 0)
    return f"127.0.0.1:{port}"


# What the services get here besides their addresses: an order whose dependency refuses it gives
# up soon, and CreateOrder waits for a final state no longer than a call's deadline here.
SETTINGS_ENV = {"SHOP_ORDER_GIVE_UP_SECONDS": "5", "SHOP_ORDER_WAIT_SECONDS": "2"}
RUN_LONGER_THAN_ANY = 24 * 3600.0


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=ENGINES)
async def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    async with contextlib.AsyncExitStack() as exits:
        urls = await exits.enter_async_context(
            engine_urls(request.param, tmp_path_factory.mktemp("fuzz"))
        )
        keys = make_token_keys(tmp_path_factory.mktemp("token-keys"))
        addresses: dict[str, str] = {}
        databases: dict[str, tuple[Database, MetaData]] = {}
        for name in registry.start_order():
            spec = registry.services()[name]
            addresses[name], databases[name] = await run_service(
                spec, urls[name], addresses, exits, keys
            )
        channels = {name: grpc.aio.insecure_channel(address) for name, address in addresses.items()}
        for channel in channels.values():
            exits.push_async_callback(channel.close)
        running = Stack(channels, databases, keys)
        running.pools = await seed(running)
        yield running


async def run_service(
    spec: registry.ServiceSpec,
    url: str,
    addresses: dict[str, str],
    exits: contextlib.AsyncExitStack,
    keys: TokenKeys,
) -> tuple[str, tuple[Database, MetaData]]:
    """Builds `spec`'s service as its own bootstrap does, on `url`, and serves it on loopback.

    Its background jobs (a saga's recovery, a sweeper) are not run: their writes would make
    "a refused call wrote nothing" impossible to tell.
    """
    config = importlib.import_module(f"{spec.main_module}.config")
    bootstrap = importlib.import_module(f"{spec.main_module}.bootstrap")
    targets = {f"SHOP_{dep.upper()}_TARGET": addresses[dep] for dep in spec.depends_on}
    # The harness's channels live for the whole run. A connection retired at its maximum age
    # (GOAWAY max_age; tests/e2e/test_e2e_load_balancing covers it) can race a call started
    # as the GOAWAY arrives, which the transport then ends UNAVAILABLE: an answer of the
    # connection, not of the service, so connections here are not retired during a run.
    # The user service signs access tokens; the others verify them.
    server = test_settings(
        spec.name,
        url,
        max_connection_age_seconds=RUN_LONGER_THAN_ANY,
        tokens=keys.issuer() if spec.name == "user" else keys.verifier(),
    )
    settings = replace(config.load(Env({**SETTINGS_ENV, **targets})), server=server)
    storage = await Storage.open(url, bootstrap.metadata)
    exits.push_async_callback(storage.db.dispose)
    app = bootstrap.build(settings, storage)
    for cleanup in app.cleanup:
        exits.push_async_callback(cleanup)
    for stopping in app.stopping:
        exits.callback(stopping)
    address = await start(GrpcServer(settings.server, app.services), exits)
    return address, (storage.db, bootstrap.metadata)


async def seed(stack: Stack) -> dict[str, list[Any]]:
    """Real users, products, stock, orders and payments, and values that name them."""
    users = user_pb2_grpc.UserServiceStub(stack.channels["user"])
    inventory = inventory_pb2_grpc.InventoryServiceStub(stack.channels["inventory"])
    orders = order_pb2_grpc.OrderServiceStub(stack.channels["order"])
    payments = payment_pb2_grpc.PaymentServiceStub(stack.channels["payment"])
    user_ids = []
    for name in ("fuzz.one", "fuzz.two"):
        user = await users.CreateUser(
            user_pb2.CreateUserRequest(
                user=user_pb2.User(username=name, email=f"{name}@example.com"),
                password="correct horse battery",
            ),
            timeout=10,
        )
        user_ids.append(user.user_id)
    for product_id in ("widget", "gadget"):
        await inventory.CreateProduct(
            inventory_pb2.CreateProductRequest(
                product=inventory_pb2.Product(
                    product_id=product_id,
                    title=product_id.title(),
                    price=money_pb2.Money(currency_code="USD", amount_minor=1250),
                )
            ),
            timeout=10,
        )
    await inventory.ImportStock(
        iter(
            [
                inventory_pb2.ImportStockRequest(request_id="seed", product_id=p, quantity=1000)
                for p in ("widget", "gadget")
            ]
        ),
        timeout=10,
    )
    placed = [
        await orders.CreateOrder(
            order_pb2.CreateOrderRequest(
                user_id=user_ids[0],
                lines=[money_pb2.LineItem(product_id="widget", quantity=1)],
                card=payment_pb2.PaymentCard(
                    number="4242 4242 4242 4242", exp_month=12, exp_year=2099, cvc="123"
                ),
            ),
            timeout=10,
        )
        for _ in range(2)
    ]
    listed = await payments.ListPayments(payment_pb2.ListPaymentsRequest(page_size=1), timeout=10)
    tokens = [
        listed.next_page_token,
        (await users.ListUsers(user_pb2.ListUsersRequest(page_size=1))).next_page_token,
        (
            await inventory.ListProducts(inventory_pb2.ListProductsRequest(page_size=1))
        ).next_page_token,
        (
            await orders.ListOrders(order_pb2.ListOrdersRequest(user_id=user_ids[0], page_size=1))
        ).next_page_token,
    ]
    await stack.settle()
    ids = [*user_ids, *(o.order_id for o in placed), str(uuid.uuid4())]
    return {
        "user_id": [*user_ids, str(uuid.uuid4())],
        "order_id": [*(o.order_id for o in placed), str(uuid.uuid4())],
        "payment_id": [o.payment_id for o in placed],
        "payment_method_id": [p.payment_method_id for p in listed.payments],
        "product_id": ["widget", "gadget", "ghost"],
        "product_ids": ["widget", "gadget", "ghost"],
        "request_id": ["fuzz-key-1", "fuzz-key-2", "seed"],
        "page_token": [*tokens, *_forged_tokens(ids)],
        "paths": ["username", "email", "display_name"],
        "currency_code": ["USD", "EUR"],
        "number": ["4242424242424242", "4000000000000002", "4000 0000 0000 0119"],
        "cvc": ["123", "1234"],
        "username": ["fuzz.three", "fuzz.four", "fuzz.one"],
        "email": ["fuzz.three@example.com", "fuzz.one@example.com"],
        "password": ["correct horse battery"],
        "login": ["fuzz.one", "FUZZ.TWO@example.com", "nobody"],
        "authorization": [
            *(f"Bearer {stack.keys.token_for(user_id)}" for user_id in user_ids),
            *_forged_authorizations(stack.keys, user_ids[0]),
        ],
        "title": ["Thing"],
        "quantity": [1, 2],
        "exp_month": [12],
        "exp_year": [2099],
        "amount_minor": [100, 1250],
        "page_size": [1, 2],
    }


def _forged_authorizations(keys: TokenKeys, user_id: str) -> Iterator[str]:
    """What a client may send that is no valid bearer token: other schemes, no token,
    garbage, and tokens whose header or signature was changed."""
    token = keys.token_for(user_id)
    header, claims, signature = token.split(".")
    unsigned = base64.urlsafe_b64encode(b'{"alg":"none","kid":"20260101T000000Z"}')
    yield from (
        "Bearer",
        "Bearer ",
        "Basic ZnV6ejpmdXp6",
        "Bearer not.a.token",
        f"Bearer {unsigned.decode().rstrip('=')}.{claims}.",
        f"Bearer {header}.{claims}.{signature[::-1]}",
        f"Bearer {header}.{claims[:-2]}.{signature}",
        "Bearer " + "A" * 5000,
    )


def _forged_tokens(ids: list[str]) -> Iterator[str]:
    """Tokens as a client might build them: readable JSON, right scope, wrong keys."""
    for scope in ("users", "products", f"orders/{ids[0]}", "payments:"):
        for key in (["x", "y"], [1, 2, 3], [], None, ["2026-01-01T00:00:00+00:00", ids[-1]]):
            raw = json.dumps({"s": scope, "k": key}).encode()
            yield base64.urlsafe_b64encode(raw).decode().rstrip("=")


# --- one call ----------------------------------------------------------------------------


@dataclass
class Outcome:
    code: grpc.StatusCode
    error: grpc.aio.AioRpcError | None
    seconds: float


async def in_lock_step(call: Any, messages: list[Any]) -> None:
    """A bidirectional call as its clients are told to drive it (README, "The API"): each
    message only after the reply to the one before, so what arrives is the server's status
    (grpc/grpc#36066)."""
    for message in messages:
        try:
            await call.write(message)
        except asyncio.InvalidStateError:
            break  # the server ended the call: its status is read below
        if await call.read() is grpc.aio.EOF:
            break
    with contextlib.suppress(asyncio.InvalidStateError):
        await call.done_writing()
    while await call.read() is not grpc.aio.EOF:
        pass
    code = await call.code()
    if code != grpc.StatusCode.OK:
        raise grpc.aio.AioRpcError(
            code,
            await call.initial_metadata(),
            await call.trailing_metadata(),
            await call.details(),
        )


async def invoke(
    channel: grpc.aio.Channel,
    service: d.ServiceDescriptor,
    method: d.MethodDescriptor,
    request: Any,
    *,
    raw: bool = False,
    metadata: tuple[tuple[str, str], ...] = (),
) -> Outcome:
    """Calls `method` with `request` (a list for a client stream) and `metadata`; `raw`: bytes
    as they are."""
    path = f"/{service.full_name}/{method.name}"
    serialize = None if raw else message_class(method.input_type).SerializeToString
    parse = None if raw else message_class(method.output_type).FromString
    kind = {
        (False, False): channel.unary_unary,
        (False, True): channel.unary_stream,
        (True, False): channel.stream_unary,
        (True, True): channel.stream_stream,
    }[(method.client_streaming, method.server_streaming)]
    call = kind(path, request_serializer=serialize, response_deserializer=parse)
    deadline = WATCH_SECONDS if method.name.startswith("Watch") else DEADLINE_SECONDS
    started = time.monotonic()
    try:
        if method.client_streaming and method.server_streaming:
            await in_lock_step(call(timeout=deadline, metadata=metadata), request)
        elif method.server_streaming:
            async for _ in call(request, timeout=deadline, metadata=metadata):
                pass
        else:
            await call(
                iter(request) if method.client_streaming else request,
                timeout=deadline,
                metadata=metadata,
            )
    except grpc.aio.AioRpcError as error:
        return Outcome(error.code(), error, time.monotonic() - started)
    return Outcome(grpc.StatusCode.OK, None, time.monotonic() - started)


def _throttled_sign_in(method: d.MethodDescriptor, outcome: Outcome) -> bool:
    """Login's answer once fuzzed failures have throttled an account or this caller: a precise
    RESOURCE_EXHAUSTED, with its reason and how long to wait."""
    if method.name != "Login" or outcome.code != grpc.StatusCode.RESOURCE_EXHAUSTED:
        return False
    assert outcome.error is not None
    error = status.from_rpc_error(outcome.error)
    assert error.reason == "TOO_MANY_FAILED_SIGN_INS", outcome.error
    rich = rpc_status.from_call(outcome.error)
    assert rich is not None
    assert any(detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR) for detail in rich.details)
    return True


def _client_made_up(outcome: Outcome) -> bool:
    """True for the INTERNAL a grpcio client reports when a write fails on a call the server
    has just ended (grpc/grpc#36066): a status the server never sent."""
    return (
        outcome.code == grpc.StatusCode.INTERNAL
        and outcome.error is not None
        and outcome.error.details() == "Internal error from Core"
    )


@pytest.mark.parametrize(("service_name", "method"), METHODS, ids=[m.full_name for _, m in METHODS])
async def test_every_answer_is_precise_timely_and_a_refusal_writes_nothing(
    stack: Stack, service_name: str, method: d.MethodDescriptor
) -> None:
    service = SERVICES[service_name]
    channel = stack.channels[service_name]
    seen: dict[str, int] = {}

    async def check(request: Any, authorization: str | None) -> None:
        before = await stack.settle()
        metadata = () if authorization is None else (("authorization", authorization),)
        with structlog.testing.capture_logs([structlog.contextvars.merge_contextvars]) as logs:
            outcome = await invoke(channel, service, method, request, metadata=metadata)
        if _client_made_up(outcome):
            # grpcio's client replaced the server's status with its own INTERNAL
            # (grpc/grpc#36066); what the server answered is in its log line for the call.
            path = f"/{service.full_name}/{method.name}"
            codes = [e["code"] for e in logs if e.get("rpc") == path and e["event"] == "rpc"]
            assert codes, "the server logged no outcome for the call"
            outcome = Outcome(grpc.StatusCode[codes[-1]], None, outcome.seconds)
        seen[outcome.code.name] = seen.get(outcome.code.name, 0) + 1
        if not _throttled_sign_in(method, outcome):
            assert outcome.code not in FORBIDDEN, outcome.error
        assert outcome.seconds <= DEADLINE_SECONDS + LATE_SECONDS, outcome
        if outcome.code in (grpc.StatusCode.OK, grpc.StatusCode.DEADLINE_EXCEEDED):
            stack.busy = True  # accepted: what it started may still be writing
        if outcome.code == grpc.StatusCode.DEADLINE_EXCEEDED:
            assert method.name in WAITING, outcome.error
            return  # the order was accepted and goes on: its writes are expected
        if outcome.code == grpc.StatusCode.INVALID_ARGUMENT and outcome.error is not None:
            error = status.from_rpc_error(outcome.error)
            assert isinstance(error, InvalidArgument)
            assert error.violations, "INVALID_ARGUMENT names no field"
        if outcome.code != grpc.StatusCode.OK:
            assert await stack.snapshot() == before, f"a refused call wrote: {outcome.error}"

    # Hypothesis drives plain functions: it runs in a worker thread and hands each request
    # to this event loop, where the servers live.
    loop = asyncio.get_running_loop()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(
        request=requests(method, stack.pools),
        authorization=st.none()
        | st.sampled_from(stack.pools["authorization"])
        | st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=100),
    )
    def one_call(request: Any, authorization: str | None) -> None:
        asyncio.run_coroutine_threadsafe(check(request, authorization), loop).result()

    await asyncio.to_thread(one_call)
    print(f"{method.full_name}: {sum(seen.values())} calls {dict(sorted(seen.items()))}")


def unparsable(descriptor: d.Descriptor) -> list[bytes]:
    """Bytes no client library would send: corrupt wire format, and for each string field of
    `descriptor` that field holding bytes that are not UTF-8."""
    corrupt = [b"\xff\xff\xff", b"\x0a\x05ab"]  # a bad tag; a length past the end
    for f in descriptor.fields:
        if f.type == d.FieldDescriptor.TYPE_STRING and f.number < 16:
            corrupt.append(bytes([f.number << 3 | 2, 3]) + b"\xff\xfeA")
    return corrupt


@pytest.mark.parametrize(("service_name", "method"), METHODS, ids=[m.full_name for _, m in METHODS])
async def test_bytes_that_are_no_request_are_invalid_argument_and_write_nothing(
    stack: Stack, service_name: str, method: d.MethodDescriptor
) -> None:
    for data in unparsable(method.input_type):
        before = await stack.settle()
        request = [data] if method.client_streaming else data
        outcome = await invoke(
            stack.channels[service_name], SERVICES[service_name], method, request, raw=True
        )
        assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT, (data, outcome)
        assert outcome.error is not None
        assert "does not parse" in (outcome.error.details() or "")
        assert await stack.snapshot() == before
