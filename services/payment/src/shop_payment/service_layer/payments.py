"""The payment use cases: plain functions over a unit of work and a processor.

Every write is idempotent. A repeated charge for an order, or a repeated
refund request_id, returns what the first call stored; when two such calls
race, the unique index lets one insert win and the other re-reads its result.
"""

from __future__ import annotations

from datetime import datetime

import structlog

from shop_grpc import pagination
from shop_grpc.errors import Aborted
from shop_grpc.idempotency import RequestIdReused
from shop_grpc.money import Money
from shop_grpc.pagination import Page, PageTokens
from shop_grpc.storage import DuplicateKey
from shop_payment.domain.cards import Card
from shop_payment.domain.errors import (
    OrderChargedDifferently,
    PaymentMethodNotFound,
    PaymentNotFound,
)
from shop_payment.domain.model import Payment, PaymentMethod, Refund, new_id, new_payment
from shop_payment.domain.processor import Processor
from shop_payment.service_layer import metrics
from shop_payment.service_layer.unit_of_work import UnitOfWorkFactory

log = structlog.get_logger(__name__)


async def create_payment_method(
    uow: UnitOfWorkFactory, processor: Processor, card: Card, request_id: str, now: datetime
) -> PaymentMethod:
    """Tokenizes a validated card; a repeated request_id returns the first method.

    Raises RequestIdReused if the request_id was first used for another card (told apart by
    what is kept of a card: brand, last four digits, expiry).
    """
    try:
        async with uow() as tx:
            if request_id and (earlier := await tx.payments.method_for_request(request_id)):
                return _same_card(earlier, card)
            method = PaymentMethod(
                payment_method_id=new_id(),
                brand=card.brand,
                last4=card.last4,
                exp_month=card.exp_month,
                exp_year=card.exp_year,
                processor_token=processor.tokenize(card),
                create_time=now,
                request_id=request_id,
            )
            await tx.payments.add_method(method)
            await tx.commit()
    except DuplicateKey:
        async with uow(readonly=True) as tx:
            earlier = await tx.payments.method_for_request(request_id)
        if earlier is None:
            raise Aborted("a concurrent request with this request_id vanished; retry") from None
        return _same_card(earlier, card)
    # Debug: the call's own line says it succeeded; the card's brand and last4 add little.
    log.debug(
        "payment method created",
        payment_method_id=method.payment_method_id,
        brand=method.brand,
        last4=method.last4,
    )
    return method


def _same_card(earlier: PaymentMethod, card: Card) -> PaymentMethod:
    kept = (earlier.brand, earlier.last4, earlier.exp_month, earlier.exp_year)
    if kept != (card.brand, card.last4, card.exp_month, card.exp_year):
        raise RequestIdReused(earlier.request_id)
    return earlier


async def charge(
    uow: UnitOfWorkFactory,
    processor: Processor,
    order_id: str,
    payment_method_id: str,
    amount: Money,
    now: datetime,
) -> Payment:
    """Charges an order once; a decline is a stored payment, not an error."""
    try:
        async with uow() as tx:
            await tx.payments.lock_order(order_id)
            earlier = await tx.payments.payment_for_order(order_id)
            if earlier is not None:
                return _same_charge(earlier, amount)
            method = await tx.payments.get_method(payment_method_id)
            if method is None:
                raise PaymentMethodNotFound(payment_method_id)
            result = processor.charge(method.processor_token, amount)
            payment = new_payment(order_id, method, amount, result.status, result.failure_code, now)
            await tx.payments.add_payment(payment)
            await tx.commit()
    except DuplicateKey:
        return await _charged_concurrently(uow, order_id, amount)
    metrics.charged(payment.status)
    _log_payment("charge", payment, payment.amount)
    return payment


def _same_charge(earlier: Payment, amount: Money) -> Payment:
    if earlier.amount != amount:
        raise OrderChargedDifferently(earlier.order_id, earlier.amount, amount)
    return earlier


async def _charged_concurrently(uow: UnitOfWorkFactory, order_id: str, amount: Money) -> Payment:
    async with uow(readonly=True) as tx:
        earlier = await tx.payments.payment_for_order(order_id)
    if earlier is None:
        raise Aborted("a concurrent charge of this order vanished; retry")
    return _same_charge(earlier, amount)


async def refund(
    uow: UnitOfWorkFactory,
    payment_id: str,
    amount: Money | None,
    request_id: str,
    now: datetime,
) -> Payment:
    """Refunds `amount`, or everything left when None; once per request_id."""
    try:
        async with uow() as tx:
            # The row lock makes concurrent refunds of one payment take turns, so
            # each sees what the others refunded and together they cannot exceed it.
            payment = await tx.payments.get_payment(payment_id, for_update=True)
            if payment is None:
                raise PaymentNotFound(payment_id)
            earlier = await tx.payments.refund_for_request(request_id)
            if earlier is not None:
                return _replayed(earlier, payment, amount)
            updated, done = payment.refund(amount, request_id, now)
            await tx.payments.save_refund(payment, updated, done)
            await tx.commit()
    except DuplicateKey:
        return await _refunded_concurrently(uow, payment_id, request_id, amount)
    metrics.refunded()
    _log_payment("refund", updated, done.amount)
    return updated


def _replayed(earlier: Refund, payment: Payment, requested: Money | None) -> Payment:
    if not earlier.answers(payment.payment_id, requested):
        raise RequestIdReused(earlier.request_id)
    return payment


async def _refunded_concurrently(
    uow: UnitOfWorkFactory, payment_id: str, request_id: str, requested: Money | None
) -> Payment:
    async with uow(readonly=True) as tx:
        earlier = await tx.payments.refund_for_request(request_id)
        payment = await tx.payments.get_payment(payment_id)
    if earlier is None or payment is None:
        raise Aborted("a concurrent refund with this request_id vanished; retry")
    return _replayed(earlier, payment, requested)


async def get_payment(uow: UnitOfWorkFactory, payment_id: str) -> Payment:
    async with uow(readonly=True) as tx:
        payment = await tx.payments.get_payment(payment_id)
    if payment is None:
        raise PaymentNotFound(payment_id)
    return payment


async def list_payments(
    uow: UnitOfWorkFactory, tokens: PageTokens, order_id: str, page_size: int, page_token: str
) -> Page[Payment]:
    """One page of payments (of `order_id` only, if set), newest first."""
    scope = f"payments:{order_id}"
    after = tokens.read_time_and_id(scope, page_token)

    async def fetch(limit: int) -> list[Payment]:
        async with uow(readonly=True) as tx:
            return await tx.payments.list_payments(order_id, after, limit)

    def resume_after(payment: Payment) -> str:
        return tokens.issue(scope, [payment.create_time, payment.payment_id])

    return await pagination.page_of(fetch, page_size, resume_after)


def _log_payment(event: str, payment: Payment, amount: Money) -> None:
    # Exactly these fields: nothing that identifies the card beyond its last four digits.
    log.info(
        event,
        payment_id=payment.payment_id,
        order_id=payment.order_id,
        amount=str(amount),
        status=payment.status.value,
        last4=payment.card_last4,
    )
