"""The use cases over an in-memory unit of work: idempotency and its races."""

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial

import pytest

from shop_grpc.errors import FailedPrecondition, InvalidArgument, NotFound
from shop_grpc.idempotency import RequestIdReused
from shop_grpc.money import Money
from shop_grpc.pagination import PageTokens
from shop_grpc.testing import FakeDatabase, FakeUnitOfWork, UniqueViolation
from shop_payment.domain.cards import Card
from shop_payment.domain.model import Payment, PaymentMethod, PaymentStatus, Refund, new_payment
from shop_payment.domain.processor import DeterministicProcessor
from shop_payment.service_layer import payments

NOW = datetime(2030, 1, 1, tzinfo=UTC)
USD10 = Money("USD", 1000)

TOKENS = PageTokens(bytes(32))


@dataclass
class Tables:
    methods: dict[str, PaymentMethod] = field(default_factory=dict)
    payments: dict[str, Payment] = field(default_factory=dict)
    refunds: dict[str, Refund] = field(default_factory=dict)


class FakePaymentDatabase(FakeDatabase[Tables]):
    def __init__(self) -> None:
        super().__init__(Tables())
        # Rows "another replica" commits just before our insert, to simulate a race.
        self.racing_payment: Payment | None = None
        self.racing_refund: Refund | None = None


class FakeRepository:
    def __init__(self, state: Tables, db: FakePaymentDatabase) -> None:
        self.state = state
        self.db = db

    async def add_method(self, method):
        self.state.methods[method.payment_method_id] = method

    async def get_method(self, payment_method_id):
        return self.state.methods.get(payment_method_id)

    async def method_for_request(self, request_id):
        return next((m for m in self.state.methods.values() if m.request_id == request_id), None)

    async def lock_order(self, order_id):
        pass

    async def payment_for_order(self, order_id):
        return next((p for p in self.state.payments.values() if p.order_id == order_id), None)

    async def get_payment(self, payment_id, *, for_update=False):
        return self.state.payments.get(payment_id)

    async def add_payment(self, payment):
        if (winner := self.db.racing_payment) is not None:
            self.db.commit_elsewhere(lambda t: t.payments.update({winner.payment_id: winner}))
            raise UniqueViolation("payments.order_id")
        self.state.payments[payment.payment_id] = payment

    async def list_payments(self, order_id, after, limit):
        found = sorted(self.state.payments.values(), key=lambda p: (p.create_time, p.payment_id))
        found.reverse()
        if after is not None:
            found = [p for p in found if (p.create_time, p.payment_id) < after]
        return found[:limit]

    async def refund_for_request(self, request_id):
        return self.state.refunds.get(request_id)

    async def save_refund(self, before, after, refund):
        if (winner := self.db.racing_refund) is not None:
            self.db.commit_elsewhere(lambda t: t.refunds.update({winner.request_id: winner}))
            raise UniqueViolation("refunds.request_id")
        self.state.refunds[refund.request_id] = refund
        self.state.payments[after.payment_id] = after


class FakePaymentUnitOfWork(FakeUnitOfWork[Tables]):
    def bind(self, state: Tables) -> None:
        assert isinstance(self.db, FakePaymentDatabase)
        self.payments = FakeRepository(state, self.db)


class CountingProcessor(DeterministicProcessor):
    def __init__(self) -> None:
        self.charges = 0

    def charge(self, token, amount):
        self.charges += 1
        return super().charge(token, amount)


@pytest.fixture
def db():
    return FakePaymentDatabase()


@pytest.fixture
def uow(db):
    return partial(FakePaymentUnitOfWork, db)


@pytest.fixture
def processor():
    return CountingProcessor()


async def method(uow, processor, number="4242424242424242", request_id=""):
    card = Card(number, 12, 2031, "123")
    return await payments.create_payment_method(uow, processor, card, request_id, NOW)


async def test_payment_method_keeps_only_brand_last4_expiry_and_token(uow, processor):
    created = await method(uow, processor, "4000000000009995")
    assert (created.brand, created.last4, created.exp_month, created.exp_year) == (
        "visa",
        "9995",
        12,
        2031,
    )
    assert created.processor_token == "decline:insufficient_funds"


async def test_payment_method_request_id_is_idempotent(db, uow, processor):
    first = await method(uow, processor, request_id="req-1")
    again = await method(uow, processor, request_id="req-1")
    assert again == first
    with pytest.raises(RequestIdReused):
        await method(uow, processor, "5555555555554444", request_id="req-1")
    assert len(db.state.methods) == 1


async def test_second_charge_returns_the_first_and_never_charges_again(uow, processor):
    declined = await method(uow, processor, "4000000000000002")
    approved = await method(uow, processor)
    first = await payments.charge(uow, processor, "o1", declined.payment_method_id, USD10, NOW)
    again = await payments.charge(uow, processor, "o1", approved.payment_method_id, USD10, NOW)
    assert first.status == PaymentStatus.DECLINED
    assert again == first
    assert processor.charges == 1


async def test_charge_of_a_different_amount_is_refused(uow, processor):
    pm = await method(uow, processor)
    await payments.charge(uow, processor, "o1", pm.payment_method_id, USD10, NOW)
    with pytest.raises(FailedPrecondition, match=r"already charged 10\.00 USD"):
        await payments.charge(uow, processor, "o1", pm.payment_method_id, Money("USD", 1), NOW)


async def test_unknown_payment_method_is_not_found(uow, processor):
    with pytest.raises(NotFound):
        await payments.charge(uow, processor, "o1", "missing", USD10, NOW)
    assert processor.charges == 0


async def test_charge_that_loses_a_race_returns_the_winner(db, uow, processor):
    pm = await method(uow, processor)
    winner = new_payment("o1", pm, USD10, PaymentStatus.SUCCEEDED, "", NOW)
    db.racing_payment = winner
    assert await payments.charge(uow, processor, "o1", pm.payment_method_id, USD10, NOW) == winner


async def charged(uow, processor, amount=USD10):
    pm = await method(uow, processor)
    return await payments.charge(uow, processor, "o1", pm.payment_method_id, amount, NOW)


async def test_refund_replay_changes_nothing(db, uow, processor):
    payment = await charged(uow, processor)
    first = await payments.refund(uow, payment.payment_id, Money("USD", 300), "r1", NOW)
    again = await payments.refund(uow, payment.payment_id, Money("USD", 300), "r1", NOW)
    assert again.refunded == first.refunded == Money("USD", 300)
    assert len(db.state.refunds) == 1


async def test_refund_that_loses_a_race_returns_the_payment(db, uow, processor):
    payment = await charged(uow, processor)
    other = Refund("x", payment.payment_id, "r1", Money("USD", 300), NOW, Money("USD", 300))
    db.racing_refund = other
    db.state.payments[payment.payment_id] = replace(payment, refunded=Money("USD", 300))
    result = await payments.refund(uow, payment.payment_id, Money("USD", 300), "r1", NOW)
    assert result.refunded == Money("USD", 300)


async def test_refund_request_id_of_another_payment_is_refused(db, uow, processor):
    payment = await charged(uow, processor)
    db.state.refunds["r1"] = Refund("x", "another", "r1", Money("USD", 1), NOW)
    with pytest.raises(RequestIdReused):
        await payments.refund(uow, payment.payment_id, None, "r1", NOW)


async def test_refund_of_unknown_payment_is_not_found(uow):
    with pytest.raises(NotFound):
        await payments.refund(uow, "missing", None, "r1", NOW)


async def test_list_pages_until_the_last(uow, processor):
    pm = await method(uow, processor)
    for n in range(5):
        at = NOW.replace(minute=n)
        await payments.charge(uow, processor, f"o{n}", pm.payment_method_id, USD10, at)
    seen, token = [], ""
    while True:
        page_of = await payments.list_payments(uow, TOKENS, "", 2, token)
        page, token = page_of.items, page_of.next_page_token
        seen += [p.order_id for p in page]
        if not token:
            break
    assert seen == ["o4", "o3", "o2", "o1", "o0"]


async def test_list_refuses_a_token_of_another_list(uow, processor):
    pm = await method(uow, processor)
    for n in range(3):
        await payments.charge(uow, processor, f"o{n}", pm.payment_method_id, USD10, NOW)
    token = (await payments.list_payments(uow, TOKENS, "", 1, "")).next_page_token
    with pytest.raises(InvalidArgument):
        await payments.list_payments(uow, TOKENS, "o1", 1, token)
