"""Fakes of the services the order saga calls, and fixtures that wire them up."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, ClassVar, TypeVar

import pytest
from sqlalchemy import MetaData

from shop_grpc.changes import ChangeSignal
from shop_grpc.config import Env
from shop_grpc.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PreconditionViolation,
    Unavailable,
)
from shop_grpc.money import Money
from shop_grpc.service import Storage
from shop_grpc.storage import Database
from shop_grpc.testing import database_url, db, test_settings, traced  # noqa: F401
from shop_order import bootstrap, config
from shop_order.adapters.orm import metadata
from shop_order.adapters.unit_of_work import SqlUnitOfWork
from shop_order.bootstrap import OrderApp
from shop_order.config import Settings
from shop_order.domain.model import Lease, OrderLine
from shop_order.service_layer.orders import WaitSettings
from shop_order.service_layer.ports import (
    Card,
    Dependencies,
    Payment,
    PaymentOutcome,
    ProductOffer,
    Reservation,
)
from shop_order.service_layer.saga_runner import SagaRunner, SagaSettings

# The user service's ids; the fake also knows users by name, for short tests.
_USER_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
T = TypeVar("T")
APPROVED = Card("4242424242424242", 12, 2040, "123")
DECLINED = Card("4000000000000002", 12, 2040, "123")


class Faults:
    """Makes named calls fail (a number of times, or every time until told otherwise), or
    hang until released."""

    def __init__(self) -> None:
        self.unavailable: dict[str, int] = {}
        self.failing: dict[str, Exception] = {}
        self.hang: dict[str, asyncio.Event] = {}
        self.calls: list[str] = []
        self.times: dict[str, list[float]] = {}
        self.landing: list[asyncio.Future[Any]] = []

    async def enter(self, name: str) -> None:
        self.calls.append(name)
        self.times.setdefault(name, []).append(asyncio.get_running_loop().time())
        if self.unavailable.get(name, 0) > 0:
            self.unavailable[name] -= 1
            raise Unavailable(f"{name} is down")
        if name in self.failing:
            raise self.failing[name]
        if name in self.hang:
            await self.hang[name].wait()


def served(name: str) -> Callable[[Callable[..., Awaitable[T]]], Callable[..., Awaitable[T]]]:
    """Runs a fake's method as a server runs a call: held or failed by `Faults` first, then
    to the end even if the caller stops waiting, since cancelling a call does not stop a
    server that already has it. Runs left behind are in `Faults.landing`."""

    def decorate(method: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
        @functools.wraps(method)
        async def call(self: Any, *args: Any) -> T:
            async def serve() -> T:
                await self.faults.enter(name)
                return await method(self, *args)

            run = asyncio.ensure_future(serve())
            self.faults.landing.append(run)
            return await asyncio.shield(run)

        return call

    return decorate


@dataclass
class FakeUsers:
    faults: Faults
    known: set[str] = field(default_factory=set)

    @served("get_user")
    async def ensure_exists(self, user_id: str) -> None:
        if user_id in self.known:
            return
        if not _USER_ID.fullmatch(user_id):
            # As the user service answers an id that cannot be one of its users.
            raise InvalidArgument([FieldViolation("user_id", "must be a UUID")])
        raise NotFound("user", user_id)


@dataclass
class FakeInventory:
    faults: Faults
    prices: dict[str, Money] = field(default_factory=dict)
    available: dict[str, int] = field(default_factory=dict)
    sold: dict[str, int] = field(default_factory=dict)
    reservations: dict[str, tuple[str, list[OrderLine]]] = field(default_factory=dict)

    @served("reserve")
    async def reserve(self, order_id: str, lines: list[OrderLine]) -> Reservation:
        state, _ = self.reservations.get(order_id, ("", []))
        if state in ("RELEASED", "EXPIRED"):
            raise FailedPrecondition(f"reservation {state.lower()}", reason="RESERVATION_CLOSED")
        if order_id not in self.reservations:
            for line in lines:
                if line.product_id not in self.prices:
                    raise NotFound("product", line.product_id)
            short = [
                PreconditionViolation("STOCK", line.product_id, "not enough")
                for line in lines
                if self.available[line.product_id] < line.quantity
            ]
            if short:
                raise FailedPrecondition("out of stock", short)
            for line in lines:
                self.available[line.product_id] -= line.quantity
            priced = [
                OrderLine(line.product_id, line.quantity, self.prices[line.product_id])
                for line in lines
            ]
            self.reservations[order_id] = ("PENDING", priced)
        _, priced = self.reservations[order_id]
        total = Money("USD", sum(line.quantity * line.unit_price.amount_minor for line in priced))  # type: ignore[union-attr]
        return Reservation(priced, total)

    @served("commit")
    async def commit(self, order_id: str) -> None:
        state, lines = self.reservations[order_id]
        if state == "PENDING":
            for line in lines:
                self.sold[line.product_id] = self.sold.get(line.product_id, 0) + line.quantity
            self.reservations[order_id] = ("COMMITTED", lines)
        elif state != "COMMITTED":
            raise FailedPrecondition(f"reservation {state.lower()}")

    @served("release")
    async def release(self, order_id: str) -> None:
        # Releasing before the reserve leaves a tombstone, so a late reserve is refused.
        state, lines = self.reservations.setdefault(order_id, ("RELEASED", []))
        if state in ("PENDING", "COMMITTED"):
            for line in lines:
                self.available[line.product_id] += line.quantity
                if state == "COMMITTED":
                    self.sold[line.product_id] -= line.quantity
            self.reservations[order_id] = ("RELEASED", lines)

    @served("offer")
    async def offer(self, product_id: str) -> ProductOffer:
        if product_id not in self.prices:
            raise NotFound("product", product_id)
        return ProductOffer(
            product_id, product_id.title(), self.prices[product_id], self.available[product_id]
        )


@dataclass
class FakePayments:
    faults: Faults
    methods: dict[str, str] = field(default_factory=dict)
    payments: dict[str, Payment] = field(default_factory=dict)
    charged: dict[str, int] = field(default_factory=dict)
    refunded: dict[str, int] = field(default_factory=dict)

    @served("create_payment_method")
    async def create_payment_method(self, card: Card, request_id: str) -> str:
        if not card.number.isdigit():
            raise InvalidArgument([FieldViolation("card.number", "fails the Luhn check")])
        method_id = str(uuid.uuid4())
        self.methods[method_id] = card.number
        return method_id

    @served("charge")
    async def charge(self, order_id: str, payment_method_id: str, amount: Money) -> Payment:
        if order_id not in self.payments:
            declined = self.methods[payment_method_id] == DECLINED.number
            outcome = PaymentOutcome.DECLINED if declined else PaymentOutcome.SUCCEEDED
            payment = Payment(f"pay-{order_id}", outcome, "card_declined" if declined else "")
            self.payments[order_id] = payment
            if not declined:
                self.charged[order_id] = amount.amount_minor
        return self.payments[order_id]

    @served("refund")
    async def refund_all(self, payment_id: str, request_id: str) -> None:
        order_id = payment_id.removeprefix("pay-")
        self.refunded[order_id] = self.charged[order_id]
        self.payments[order_id] = Payment(payment_id, PaymentOutcome.REFUNDED)

    def net_charged(self, order_id: str) -> int:
        return self.charged.get(order_id, 0) - self.refunded.get(order_id, 0)


@dataclass
class World:
    faults: Faults
    users: FakeUsers
    inventory: FakeInventory
    payments: FakePayments
    # Cards the fake payment service approves and declines.
    approved: ClassVar[Card] = APPROVED
    declined: ClassVar[Card] = DECLINED

    @property
    def deps(self) -> Dependencies:
        return Dependencies(self.users, self.inventory, self.payments)


@pytest.fixture
def world() -> World:
    faults = Faults()
    world = World(faults, FakeUsers(faults), FakeInventory(faults), FakePayments(faults))
    world.users.known.add("alice")
    world.inventory.prices.update(widget=Money("USD", 1250), gadget=Money("USD", 2400))
    world.inventory.available.update(widget=10, gadget=5)
    return world


@pytest.fixture
def db_metadata() -> MetaData:
    return metadata


FAST = SagaSettings(lease_seconds=30, recovery_interval_seconds=0.05, give_up_seconds=30)


RunnerFactory = Callable[..., SagaRunner]


@pytest.fixture
def new_runner(db: Database, world: World) -> RunnerFactory:  # noqa: F811
    """Builds a saga runner; each call is a new boot of replica `owner`."""

    def build(owner: str = "order-a", settings: SagaSettings = FAST) -> SagaRunner:
        lease = Lease(owner, str(uuid.uuid4()), settings.lease_seconds)
        return SagaRunner(
            partial(SqlUnitOfWork, db), world.deps, lease, ChangeSignal(0.05), settings
        )

    return build


AssembleOrder = Callable[[float], contextlib.AbstractAsyncContextManager[tuple[Settings, OrderApp]]]


@pytest.fixture
def assemble_order(database_url: str, world: World) -> AssembleOrder:  # noqa: F811
    """The order service as its bootstrap assembles it, on the test's database and `world`'s
    fakes, with `default_wait_seconds` for CreateOrder and CancelOrder: a context manager
    yielding its settings and app, closed (and the database let go) on leaving."""

    @contextlib.asynccontextmanager
    async def assembled(default_wait_seconds: float) -> AsyncIterator[tuple[Settings, OrderApp]]:
        settings = dataclasses.replace(
            config.load(Env({})),
            server=test_settings("order", database_url),
            waits=WaitSettings(default_wait_seconds=default_wait_seconds),
        )
        storage = await Storage.open(database_url, metadata)
        app = bootstrap.assemble(settings, storage, deps=world.deps)
        try:
            yield settings, app
        finally:
            await app.close()
            await storage.db.dispose()

    return assembled
