"""The use cases over an in-memory unit of work: idempotency and its races."""

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from shop_grpc.errors import FailedPrecondition, InvalidArgument, NotFound
from shop_grpc.idempotency import RequestIdReused
from shop_grpc.money import Money
from shop_grpc.pagination import PageTokens
from shop_grpc.storage import DuplicateKey
from shop_payment.domain.cards import Card
from shop_payment.domain.model import Payment, PaymentMethod, PaymentStatus, Refund, new_payment
from shop_payment.domain.processor import DeterministicProcessor
from shop_payment.service_layer import payments

NOW = datetime(2030, 1, 1, tzinfo=UTC)
USD10 = Money("USD", 1000)

TOKENS = PageTokens(bytes(32))


class FakeRepository:
    def __init__(self) -> None:
        self.methods: dict[str, PaymentMethod] = {}
        self.payments: dict[str, Payment] = {}
        self.refunds: dict[str, Refund] = {}
        # Rows "another replica" commits just before our insert, to simulate a race.
        self.racing_payment: Payment | None = None
        self.racing_refund: Refund | None = None

    async def add_method(self, method):
        self.methods[method.payment_method_id] = method

    async def get_method(self, payment_method_id):
        return self.methods.get(payment_method_id)

    async def method_for_request(self, request_id):
        return next((m for m in self.methods.values() if m.request_id == request_id), None)

    async def lock_order(self, order_id):
        pass

    async def payment_for_order(self, order_id):
        return next((p for p in self.payments.values() if p.order_id == order_id), None)

    async def get_payment(self, payment_id, *, for_update=False):
        return self.payments.get(payment_id)

    async def add_payment(self, payment):
        if self.racing_payment is not None:
            self.payments[self.racing_payment.payment_id] = self.racing_payment
            raise DuplicateKey("order_id")
        self.payments[payment.payment_id] = payment

    async def list_payments(self, order_id, after, limit):
        found = sorted(self.payments.values(), key=lambda p: (p.create_time, p.payment_id))
        found.reverse()
        if after is not None:
            found = [p for p in found if (p.create_time, p.payment_id) < after]
        return found[:limit]

    async def refund_for_request(self, request_id):
        return self.refunds.get(request_id)

    async def save_refund(self, before, after, refund):
        if self.racing_refund is not None:
            self.refunds[self.racing_refund.request_id] = self.racing_refund
            raise DuplicateKey("request_id")
        self.refunds[refund.request_id] = refund
        self.payments[after.payment_id] = after


class FakeUnitOfWork:
    def __init__(self) -> None:
        self.payments = FakeRepository()
        self.commits = 0

    def __call__(self, *, readonly=False):
        return self

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc_info):
        pass

    async def commit(self):
        self.commits += 1


class CountingProcessor(DeterministicProcessor):
    def __init__(self) -> None:
        self.charges = 0

    def charge(self, token, amount):
        self.charges += 1
        return super().charge(token, amount)


@pytest.fixture
def uow():
    return FakeUnitOfWork()


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


async def test_payment_method_request_id_is_idempotent(uow, processor):
    first = await method(uow, processor, request_id="req-1")
    again = await method(uow, processor, request_id="req-1")
    assert again == first
    with pytest.raises(RequestIdReused):
        await method(uow, processor, "5555555555554444", request_id="req-1")
    assert len(uow.payments.methods) == 1


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


async def test_charge_that_loses_a_race_returns_the_winner(uow, processor):
    pm = await method(uow, processor)
    winner = new_payment("o1", pm, USD10, PaymentStatus.SUCCEEDED, "", NOW)
    uow.payments.racing_payment = winner
    assert await payments.charge(uow, processor, "o1", pm.payment_method_id, USD10, NOW) == winner


async def charged(uow, processor, amount=USD10):
    pm = await method(uow, processor)
    return await payments.charge(uow, processor, "o1", pm.payment_method_id, amount, NOW)


async def test_refund_replay_changes_nothing(uow, processor):
    payment = await charged(uow, processor)
    first = await payments.refund(uow, payment.payment_id, Money("USD", 300), "r1", NOW)
    again = await payments.refund(uow, payment.payment_id, Money("USD", 300), "r1", NOW)
    assert again.refunded == first.refunded == Money("USD", 300)
    assert len(uow.payments.refunds) == 1


async def test_refund_that_loses_a_race_returns_the_payment(uow, processor):
    payment = await charged(uow, processor)
    other = Refund("x", payment.payment_id, "r1", Money("USD", 300), NOW, Money("USD", 300))
    uow.payments.racing_refund = other
    uow.payments.payments[payment.payment_id] = replace(payment, refunded=Money("USD", 300))
    result = await payments.refund(uow, payment.payment_id, Money("USD", 300), "r1", NOW)
    assert result.refunded == Money("USD", 300)


async def test_refund_request_id_of_another_payment_is_refused(uow, processor):
    payment = await charged(uow, processor)
    uow.payments.refunds["r1"] = Refund("x", "another", "r1", Money("USD", 1), NOW)
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
