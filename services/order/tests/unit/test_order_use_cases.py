"""The order use cases over an in-memory unit of work: idempotent placing and its race, who
sees which order, paging, and what a cancel does at each stage. The saga itself is not run:
a fake runner records what it was asked to drive."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial

import pytest

from shop_grpc.errors import InvalidArgument
from shop_grpc.idempotency import RequestIdReused
from shop_grpc.pagination import PageTokens
from shop_grpc.principal import ANYONE, Caller
from shop_grpc.testing import FakeDatabase, FakeUnitOfWork, UniqueViolation
from shop_order.domain import saga
from shop_order.domain.errors import OrderAlreadyFailed, OrderNotFound, OtherCustomer
from shop_order.domain.model import Lease, Order, OrderLine, Status, Step
from shop_order.service_layer import orders
from shop_order.service_layer.ports import Card

CARD = Card("4242424242424242", 12, 2040, "123")
LINES = [OrderLine("widget", 2)]
ALICE = Caller("client", user_id="alice")
BOB = Caller("client", user_id="bob")
OPERATOR = Caller("client")
TOKENS = PageTokens(bytes(32))
EPOCH = datetime(2030, 1, 1, tzinfo=UTC)
LEASE = Lease("order-a", "boot-1", 30)


@dataclass
class Tables:
    orders: dict[str, Order] = field(default_factory=dict)
    leased: dict[str, Lease] = field(default_factory=dict)


class FakeOrderDatabase(FakeDatabase[Tables]):
    def __init__(self) -> None:
        super().__init__(Tables())
        # An order "another replica" commits with the same request_id just before our insert.
        self.racing: Order | None = None


class FakeOrders:
    def __init__(self, state: Tables, db: FakeOrderDatabase) -> None:
        self.state = state
        self.db = db

    async def add(self, order: Order, lease: Lease, now: datetime) -> None:
        if (winner := self.db.racing) is not None:
            self.db.commit_elsewhere(lambda t: t.orders.update({winner.order_id: winner}))
            raise UniqueViolation("orders.request_id")
        if any(o.request_id == order.request_id for o in self.state.orders.values()):
            raise UniqueViolation("orders.request_id")
        order.create_time = order.create_time or now
        self.state.orders[order.order_id] = order
        self.state.leased[order.order_id] = lease

    async def get(self, order_id: str, *, for_update: bool = False) -> Order | None:
        return self.state.orders.get(order_id)

    async def get_by_request_id(self, request_id: str) -> Order | None:
        return next((o for o in self.state.orders.values() if o.request_id == request_id), None)

    async def list_for_user(
        self, user_id: str, after: tuple[datetime, str] | None, limit: int
    ) -> list[Order]:
        mine = [o for o in self.state.orders.values() if o.user_id == user_id]
        mine.sort(key=lambda o: (o.create_time, o.order_id), reverse=True)
        if after is not None:
            mine = [o for o in mine if (o.create_time, o.order_id) < after]
        return mine[:limit]

    async def save_unleased(self, order: Order, now: datetime) -> None:
        self.state.orders[order.order_id] = order

    async def reopen(self, order: Order, lease: Lease, now: datetime) -> None:
        self.state.orders[order.order_id] = order
        self.state.leased[order.order_id] = lease


class FakeOrderUnitOfWork(FakeUnitOfWork[Tables]):
    def bind(self, state: Tables) -> None:
        assert isinstance(self.db, FakeOrderDatabase)
        self.orders = FakeOrders(state, self.db)


@dataclass
class FakePayments:
    methods: list[str] = field(default_factory=list)

    async def create_payment_method(self, card: Card, request_id: str) -> str:
        self.methods.append(request_id)
        return f"pm-{len(self.methods)}"


@dataclass
class FakeSignal:
    notified: list[str] = field(default_factory=list)

    def notify(self, key: str) -> None:
        self.notified.append(key)


@dataclass
class FakeRunner:
    """What the use cases ask of the saga runner: its lease, its signal, and `start`."""

    lease: Lease = LEASE
    signal: FakeSignal = field(default_factory=FakeSignal)
    started: list[tuple[str, bool]] = field(default_factory=list)

    def start(self, order_id: str, *, claimed: bool = False, placed: Order | None = None) -> None:
        self.started.append((order_id, claimed))


@pytest.fixture
def db() -> FakeOrderDatabase:
    return FakeOrderDatabase()


@pytest.fixture
def uow(db: FakeOrderDatabase) -> partial[FakeOrderUnitOfWork]:
    return partial(FakeOrderUnitOfWork, db)


@pytest.fixture
def payments() -> FakePayments:
    return FakePayments()


@pytest.fixture
def runner() -> FakeRunner:
    return FakeRunner()


@pytest.fixture
def place(uow, payments, runner):
    async def placing(
        request_id: str = "req-1",
        fingerprint: str = "fp-1",
        user_id: str = "alice",
        caller: Caller = ALICE,
    ) -> Order:
        return await orders.place_order(
            uow,
            payments,
            runner,
            user_id=user_id,
            lines=list(LINES),
            card=CARD,
            request_id=request_id,
            fingerprint=fingerprint,
            caller=caller,
        )

    return placing


def stored(db: FakeOrderDatabase, order_id: str, **changes: object) -> None:
    """Changes the committed order as the saga would have by now."""
    for name, value in changes.items():
        setattr(db.state.orders[order_id], name, value)


# --- placing --------------------------------------------------------------------------------


async def test_placing_stores_the_order_at_its_first_step_and_starts_its_saga_claimed(
    place, db, payments, runner
):
    order = await place()

    assert db.state.orders[order.order_id].step is Step.CHECKING_USER
    assert (order.status, order.user_id, order.payment_method_id) == (
        Status.PENDING,
        "alice",
        "pm-1",
    )
    assert db.state.leased[order.order_id] == runner.lease
    assert payments.methods == ["req-1"]
    assert runner.started == [(order.order_id, True)]


async def test_the_same_request_again_returns_the_first_order_and_starts_nothing_new(
    place, db, payments, runner
):
    first = await place()
    again = await place()

    assert again.order_id == first.order_id
    assert list(db.state.orders) == [first.order_id]
    assert payments.methods == ["req-1"]
    assert runner.started == [(first.order_id, True)]


async def test_a_request_id_reused_for_another_request_is_refused_and_changes_nothing(
    place, db, payments, runner
):
    first = await place(fingerprint="fp-1")

    with pytest.raises(RequestIdReused):
        await place(fingerprint="fp-2")

    assert list(db.state.orders) == [first.order_id]
    assert payments.methods == ["req-1"]
    assert len(runner.started) == 1


async def test_without_a_request_id_each_call_is_a_new_order(place, db):
    one, two = await place(request_id=""), await place(request_id="")

    assert one.order_id != two.order_id
    assert one.request_id != two.request_id
    assert len(db.state.orders) == 2


async def test_losing_the_race_for_a_request_id_returns_the_winners_order(place, db, runner):
    winner = Order("o-won", "alice", list(LINES), "pm-0", "req-1", request_fingerprint="fp-1")
    db.racing = winner

    got = await place()

    assert got.order_id == "o-won"
    assert list(db.state.orders) == ["o-won"]
    assert runner.started == []  # the winner's replica drives it


async def test_losing_the_race_to_another_request_with_that_id_is_refused(place, db):
    db.racing = Order("o-won", "alice", list(LINES), "pm-0", "req-1", request_fingerprint="fp-9")

    with pytest.raises(RequestIdReused):
        await place()


async def test_a_customer_may_not_order_for_another_user_and_nothing_is_charged_or_stored(
    place, db, payments
):
    with pytest.raises(OtherCustomer):
        await place(user_id="bob", caller=ALICE)

    assert db.state.orders == {}
    assert payments.methods == []
    assert (await place(user_id="bob", caller=OPERATOR)).user_id == "bob"


# --- reading --------------------------------------------------------------------------------


async def test_another_customers_order_is_not_found_exactly_like_a_missing_one(place, uow):
    order = await place()

    assert (await orders.get_order(uow, order.order_id, ALICE)).order_id == order.order_id
    assert (await orders.get_order(uow, order.order_id, OPERATOR)).order_id == order.order_id
    assert (await orders.get_order(uow, order.order_id, ANYONE)).order_id == order.order_id
    with pytest.raises(OrderNotFound) as theirs:
        await orders.get_order(uow, order.order_id, BOB)
    with pytest.raises(OrderNotFound) as missing:
        await orders.get_order(uow, "no-such-order", BOB)
    assert theirs.value.code == missing.value.code == "NOT_FOUND"
    assert theirs.value.resource_name == order.order_id


async def placed_in_turn(place, db, count: int, user_id: str = "alice") -> list[str]:
    """`count` orders of `user_id`, each placed a minute after the last; their ids, oldest
    first."""
    ids = []
    for number in range(count):
        order = await place(request_id=f"{user_id}-{number}", user_id=user_id, caller=OPERATOR)
        stored(db, order.order_id, create_time=EPOCH + timedelta(minutes=number))
        ids.append(order.order_id)
    return ids


async def test_orders_are_listed_newest_first_a_page_at_a_time_and_only_the_users(place, db, uow):
    alices = await placed_in_turn(place, db, 5)
    await placed_in_turn(place, db, 2, user_id="bob")

    seen, token, pages = [], "", 0
    while True:
        page = await orders.list_orders(uow, TOKENS, "alice", 2, token, ALICE)
        seen += [o.order_id for o in page.items]
        pages += 1
        token = page.next_page_token
        if not token:
            break

    assert seen == list(reversed(alices))
    assert pages == 3


async def test_a_customer_may_not_list_another_users_orders_but_an_operator_may(place, db, uow):
    bobs = await placed_in_turn(place, db, 1, user_id="bob")

    with pytest.raises(OtherCustomer):
        await orders.list_orders(uow, TOKENS, "bob", 10, "", ALICE)
    page = await orders.list_orders(uow, TOKENS, "bob", 10, "", OPERATOR)
    assert [o.order_id for o in page.items] == bobs


async def test_a_page_token_of_another_users_list_is_refused(place, db, uow):
    await placed_in_turn(place, db, 3)
    first = await orders.list_orders(uow, TOKENS, "alice", 1, "", OPERATOR)
    assert first.next_page_token

    with pytest.raises(InvalidArgument):
        await orders.list_orders(uow, TOKENS, "bob", 1, first.next_page_token, OPERATOR)


# --- cancelling -----------------------------------------------------------------------------


async def test_cancelling_an_order_in_flight_asks_its_saga_to_stop_at_the_next_step(
    place, db, uow, runner
):
    order = await place()
    runner.started.clear()

    got = await orders.cancel_order(uow, runner, order.order_id, ALICE)

    assert got.cancel_requested and got.status is Status.PENDING
    assert db.state.orders[order.order_id].cancel_requested
    assert runner.signal.notified == [order.order_id]
    assert runner.started == [(order.order_id, False)]  # whoever drives it carries on


async def test_cancelling_a_confirmed_order_reopens_it_under_this_replicas_lease(
    place, db, uow, runner
):
    order = await place()
    confirmed = db.state.orders[order.order_id]
    confirmed.status, confirmed.step = Status.CONFIRMED, Step.DONE
    db.state.leased.pop(order.order_id)
    runner.started.clear()

    got = await orders.cancel_order(uow, runner, order.order_id, OPERATOR)

    assert got.undo_outcome is Status.CANCELLED
    assert got.is_undoing
    assert db.state.leased[order.order_id] == runner.lease
    assert runner.started == [(order.order_id, True)]


async def test_cancelling_a_cancelled_order_again_changes_nothing(place, db, uow, runner):
    order = await place()
    stored(db, order.order_id, status=Status.CANCELLED, step=Step.DONE)
    runner.started.clear()
    commits = db.commits

    got = await orders.cancel_order(uow, runner, order.order_id, ALICE)

    assert got.status is Status.CANCELLED
    assert (db.commits, runner.started, runner.signal.notified) == (commits, [], [])


async def test_a_failed_order_cannot_be_cancelled(place, db, uow, runner):
    order = await place()
    failed = db.state.orders[order.order_id]
    saga.undo(failed, Status.FAILED, "out of stock")
    saga.finish_undo(failed)

    with pytest.raises(OrderAlreadyFailed) as refused:
        await orders.cancel_order(uow, runner, order.order_id, ALICE)
    assert refused.value.reason == "ORDER_FAILED"


async def test_another_customer_cannot_cancel_an_order_and_learns_nothing_of_it(
    place, db, uow, runner
):
    order = await place()
    commits = db.commits

    with pytest.raises(OrderNotFound):
        await orders.cancel_order(uow, runner, order.order_id, BOB)

    assert not db.state.orders[order.order_id].cancel_requested
    assert db.commits == commits
