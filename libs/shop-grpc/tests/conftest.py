"""What several of the runtime's test files share: the kit's fixtures; a stand-in payment
service served with mTLS (``running``) with the helpers that call it; and ``shop``, a
stand-in service of every call shape served by the runtime with metrics on; and ``loopback``,
stand-in services of one method whose calls and spans the tracing tests follow; and ``hops``,
a call relayed from one server to another, each reporting the deadline it saw; and ``call``,
what the caller of a handler that raises a given error gets; and ``keys``, the table of
unique keys that the kit's ``db`` is made with, with helpers to count and add them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select

from shop_grpc import metrics
from shop_grpc.channels import open_channel
from shop_grpc.config import ServerSettings, TlsSettings
from shop_grpc.errors import FieldViolation, InvalidArgument, NotFound
from shop_grpc.server import GrpcServer, Registration
from shop_grpc.storage import Database, UnitOfWork
from shop_grpc.testing import (  # noqa: F401  (fixtures)
    MtlsServing,
    database_url,
    db,
    free_port,
    serving,
    serving_mtls,
    test_settings,
    traced,
)
from shop_grpc.testing.calls import SHAPES

PAYMENTS = "shop.payment.v1.PaymentService"
NAMESPACE = "test"


@dataclass
class SpyPayments:
    """Stands in for the payment service: records which handlers ran."""

    ran: list[str] = field(default_factory=list)
    callers: list[str] = field(default_factory=list)
    delay: float = 0.0

    def registration(self) -> Registration:
        def handler(name: str) -> grpc.RpcMethodHandler:
            async def behave(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
                self.ran.append(name)
                self.callers.append(context.auth_context()["peer_spiffe_id"][0].decode())
                await asyncio.sleep(self.delay)
                return b""

            return grpc.unary_unary_rpc_method_handler(behave)

        generic = grpc.method_handlers_generic_handler(
            PAYMENTS, {name: handler(name) for name in ("Charge", "ListPayments")}
        )
        return Registration(PAYMENTS, lambda server: server.add_generic_rpc_handlers([generic]))


@dataclass(frozen=True)
class Running(MtlsServing):
    spy: SpyPayments = field(default_factory=SpyPayments)

    def channel(self, identity: str = "client") -> grpc.aio.Channel:
        return open_channel(
            self.address, tls=TlsSettings(self.certs / identity), server_name="payment"
        )


@pytest.fixture
def namespace() -> str:
    """The namespace of `running`'s certificates."""
    return NAMESPACE


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    """The stand-in payment service, as `payment`, with certificates for every identity."""
    spy = SpyPayments()
    async with serving_mtls(tmp_path, "payment", [spy.registration()], NAMESPACE) as serving:
        yield Running(serving.server, serving.certs, serving.authority, spy)


async def _status_of(channel: grpc.aio.Channel, method: str) -> grpc.StatusCode:
    try:
        await channel.unary_unary(f"/{PAYMENTS}/{method}")(b"", timeout=5)
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


@pytest.fixture
def status_of() -> Callable[[grpc.aio.Channel, str], Awaitable[grpc.StatusCode]]:
    """The status a call of the stand-in's `method` over `channel` ends with."""
    return _status_of


def _static_channel(directory: Path | None, ca: Path, address: str) -> grpc.aio.Channel:
    key = cert = None
    if directory is not None:
        key, cert = (directory / "tls.key").read_bytes(), (directory / "tls.crt").read_bytes()
    creds = grpc.ssl_channel_credentials(ca.read_bytes(), key, cert)
    return grpc.aio.secure_channel(
        address, creds, options=[("grpc.ssl_target_name_override", "payment")]
    )


@pytest.fixture
def static_channel() -> Callable[[Path | None, Path, str], grpc.aio.Channel]:
    """A channel to the stand-in with fixed credentials; no client certificate when the
    directory is None."""
    return _static_channel


@asynccontextmanager
async def _started(
    settings: ServerSettings, services: list[Registration]
) -> AsyncIterator[GrpcServer]:
    """A GrpcServer of the runtime's, serving `services` on a port of its choosing."""
    server = GrpcServer(settings, services)
    await server.start()
    await server.set_serving(True)
    try:
        yield server
    finally:
        await server.stop(0)


# -- shop: test.Shop, every call shape, served with metrics on --------------------------------


async def _get(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return request


async def _refuse(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    raise InvalidArgument([FieldViolation("sku", "must not be empty")])


async def _find(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    raise NotFound("product", "ghost")


async def _count_in(requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> bytes:
    return str(len([r async for r in requests])).encode()


async def _two_out(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    yield request
    yield request


async def _echo_each(
    requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
) -> AsyncIterator[bytes]:
    async for request in requests:
        yield request


class Shop:
    """test.Shop: Get and Peek echo, Refuse and Find fail, Import, Watch and Chat stream,
    Slow and WatchStock never answer."""

    service = "test.Shop"
    handlers = {
        "Get": grpc.unary_unary_rpc_method_handler(_get),
        "Refuse": grpc.unary_unary_rpc_method_handler(_refuse),
        "Find": grpc.unary_unary_rpc_method_handler(_find),
        "Import": grpc.stream_unary_rpc_method_handler(_count_in),
        "Watch": grpc.unary_stream_rpc_method_handler(_two_out),
        "Chat": grpc.stream_stream_rpc_method_handler(_echo_each),
        "Peek": grpc.unary_unary_rpc_method_handler(_get),
        "Slow": SHAPES["unary"],
        "WatchStock": SHAPES["server-streaming"],
    }

    def labels(self, method: str, grpc_type: str = "unary") -> dict[str, str]:
        """The labels of `method`'s ``grpc_*`` series."""
        return {"grpc_type": grpc_type, "grpc_service": self.service, "grpc_method": method}

    @asynccontextmanager
    async def serving(self, metrics_address: str = "127.0.0.1:0") -> AsyncIterator[GrpcServer]:
        generic = grpc.method_handlers_generic_handler(self.service, self.handlers)
        registration = Registration(
            self.service, lambda server: server.add_generic_rpc_handlers([generic])
        )
        settings = test_settings("user", "sqlite://", metrics_address=metrics_address)
        async with _started(settings, [registration]) as server:
            yield server

    @asynccontextmanager
    async def channel(self, server: GrpcServer) -> AsyncIterator[grpc.aio.Channel]:
        """A channel of the runtime's to `server`."""
        channel = open_channel(f"127.0.0.1:{server.port}")
        try:
            yield channel
        finally:
            await channel.close()


@pytest.fixture
def shop(monkeypatch: pytest.MonkeyPatch) -> Shop:
    """test.Shop; channels opened in the test record their calls, as a service's do."""
    monkeypatch.setattr(metrics, "_enabled", True)
    return Shop()


# -- loopback: services of one method, Call, and their spans -------------------------------


class Loopback:
    """Stand-in services of one method, Call (bytes in, bytes out), each served by a
    GrpcServer of the runtime's on loopback; and what to look for among their spans."""

    @staticmethod
    def service(name: str, handler: grpc.RpcMethodHandler) -> Registration:
        generic = grpc.method_handlers_generic_handler(name, {"Call": handler})
        return Registration(name, lambda server: server.add_generic_rpc_handlers([generic]))

    @staticmethod
    def unary(behavior: object) -> grpc.RpcMethodHandler:
        return grpc.unary_unary_rpc_method_handler(behavior)

    @staticmethod
    def call(channel: grpc.aio.Channel, service: str) -> grpc.aio.UnaryUnaryMultiCallable:
        return channel.unary_unary(f"/{service}/Call")

    @asynccontextmanager
    async def serving(self, *services: Registration) -> AsyncIterator[str]:
        """The address of a server of `services`."""
        async with _started(test_settings("user", "sqlite://"), list(services)) as server:
            yield f"127.0.0.1:{server.port}"

    async def through_front(
        self,
        back: Callable[[bytes, grpc.aio.ServicerContext], Awaitable[bytes]],
        metadata: tuple[tuple[str, str], ...] = (),
    ) -> bytes:
        """The answer to a call of test.Front (with `metadata`), whose handler calls test.Back,
        served by `back`, over a channel of the runtime's."""
        async with self.serving(self.service("test.Back", self.unary(back))) as back_address:
            channel = open_channel(back_address, default_timeout=5)

            async def front(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
                return bytes(await self.call(channel, "test.Back")(b"x"))

            try:
                async with (
                    self.serving(self.service("test.Front", self.unary(front))) as front_address,
                    grpc.aio.insecure_channel(front_address) as caller,
                ):
                    answer = self.call(caller, "test.Front")
                    return bytes(await answer(b"x", timeout=5, metadata=metadata))
            finally:
                await channel.close()

    @staticmethod
    def one_span(spans: list[ReadableSpan], name: str, kind: SpanKind) -> ReadableSpan:
        matching = [s for s in spans if s.name == name and s.kind is kind]
        assert len(matching) == 1, [(s.name, s.kind) for s in spans]
        return matching[0]

    @staticmethod
    def parent_id(span: ReadableSpan) -> int | None:
        return None if span.parent is None else span.parent.span_id


@pytest.fixture
def loopback() -> Loopback:
    return Loopback()


# -- hops: client -> front -> back, each a server of the runtime's -------------------------


@dataclass
class Back:
    """Reports the deadline each call saw; `Hang` waits until it is cancelled."""

    service = "test.Back"
    calls: int = 0
    hung: asyncio.Event = field(default_factory=asyncio.Event)
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)

    async def remaining(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        self.calls += 1
        return repr(context.time_remaining()).encode()

    async def remaining_stream(
        self, request: bytes, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        self.calls += 1
        yield repr(context.time_remaining()).encode()

    async def hang(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        self.hung.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        return b""

    def registration(self) -> Registration:
        handler = grpc.method_handlers_generic_handler(
            Back.service,
            {
                "Remaining": grpc.unary_unary_rpc_method_handler(self.remaining),
                "RemainingStream": grpc.unary_stream_rpc_method_handler(self.remaining_stream),
                "Hang": grpc.unary_unary_rpc_method_handler(self.hang),
            },
        )
        return Registration(
            Back.service, lambda server: server.add_generic_rpc_handlers((handler,))
        )


@dataclass
class Front:
    """Each method calls the back's method of the same name and relays its answer."""

    service = "test.Front"
    channel: grpc.aio.Channel

    async def relay(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        method = request.decode()
        reply: bytes = await self.channel.unary_unary(f"/{Back.service}/{method}")(b"")
        return reply

    async def relay_stream(
        self, request: bytes, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        async for reply in self.channel.unary_stream(f"/{Back.service}/RemainingStream")(b""):
            yield reply

    async def stray_cancel(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        raise asyncio.CancelledError()

    def registration(self) -> Registration:
        handler = grpc.method_handlers_generic_handler(
            self.service,
            {
                "Relay": grpc.unary_unary_rpc_method_handler(self.relay),
                "RelayStream": grpc.unary_stream_rpc_method_handler(self.relay_stream),
                "StrayCancel": grpc.unary_unary_rpc_method_handler(self.stray_cancel),
            },
        )
        return Registration(
            self.service, lambda server: server.add_generic_rpc_handlers((handler,))
        )


@dataclass
class Hops:
    client: grpc.aio.Channel
    back: Back
    back_channel: grpc.aio.Channel
    front: str = Front.service

    async def relay(self, method: str, **kwargs: Any) -> float | None:
        reply = await self.client.unary_unary(f"/{self.front}/Relay")(method.encode(), **kwargs)
        return self.seen(reply)

    @staticmethod
    def seen(reply: bytes) -> float | None:
        """The time remaining a call of the back saw, from its `reply`."""
        value: float | None = eval(reply.decode())  # a float or None, written by repr()
        return value


@pytest.fixture
def back() -> Back:
    """test.Back, which reports the deadline each call saw."""
    return Back()


@pytest.fixture
async def hops(back: Back, tmp_path: Path) -> AsyncIterator[Hops]:
    """client -> test.Front, served as order with a default budget of 3 s, whose handlers
    call test.Back, served as inventory, over a channel of the runtime's (default 2 s)."""
    url = f"sqlite:///{tmp_path / 'unused.db'}"
    back_address = f"127.0.0.1:{free_port()}"
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(
            serving(
                test_settings("inventory", url, listen_address=back_address), [back.registration()]
            )
        )
        outbound = open_channel(back_address, default_timeout=2.0)
        stack.push_async_callback(outbound.close)
        front_settings = test_settings("order", url, default_deadline_seconds=3.0)
        client = await stack.enter_async_context(
            serving(front_settings, [Front(outbound).registration()])
        )
        yield Hops(client, back, outbound)


# -- call: a handler raising a given error, and what its caller gets -------------------------


class Raising(health_pb2_grpc.HealthServicer):
    """A servicer whose Check raises whatever the test put in `error`."""

    error: BaseException | None = None

    async def Check(self, request, context):
        assert self.error is not None
        raise self.error


@pytest.fixture
async def call(tmp_path):
    """Serves test.Raising/Check, whose handler raises what it is given: `await call(error)`
    is the AioRpcError its caller got."""
    servicer = Raising()
    handler = grpc.method_handlers_generic_handler(
        "test.Raising",
        {
            "Check": grpc.unary_unary_rpc_method_handler(
                servicer.Check,
                request_deserializer=health_pb2.HealthCheckRequest.FromString,
                response_serializer=health_pb2.HealthCheckResponse.SerializeToString,
            )
        },
    )
    registration = Registration(
        "test.Raising", lambda server: server.add_generic_rpc_handlers([handler])
    )
    settings = test_settings("user", f"sqlite:///{tmp_path / 'unused.db'}")
    async with serving(settings, [registration]) as channel:
        method = channel.unary_unary(
            "/test.Raising/Check",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )

        async def invoke(error: BaseException) -> grpc.aio.AioRpcError:
            servicer.error = error
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await method(health_pb2.HealthCheckRequest(), timeout=5)
            return caught.value

        yield invoke


# -- keys: the table of unique keys that storage's tests write ------------------------------

_KEYS = Table(
    "keys",
    MetaData(),
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(16), nullable=False, unique=True),
)


@pytest.fixture
def keys() -> Table:
    """A table of unique keys."""
    return _KEYS


@pytest.fixture
def db_metadata(keys: Table) -> MetaData:
    """The tables the kit's `db` is made with: `keys`."""
    return keys.metadata


@pytest.fixture
def count_keys(keys: Table) -> Callable[[Database], Awaitable[int]]:
    """How many rows `keys` holds, read in a read-only unit of work."""

    async def count(database: Database) -> int:
        async with UnitOfWork(database, readonly=True) as uow:
            return int(await uow.session.scalar(select(func.count()).select_from(keys)) or 0)

    return count


@pytest.fixture
def add_key(keys: Table) -> Callable[[Database, str], Awaitable[None]]:
    """Adds a key in a unit of work of its own."""

    async def add_in_a_unit_of_work(database: Database, key: str) -> None:
        async with UnitOfWork(database) as uow:
            await uow.session.execute(insert(keys).values(key=key))

    return add_in_a_unit_of_work
