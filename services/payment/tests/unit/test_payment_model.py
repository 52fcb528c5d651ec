from dataclasses import replace
from datetime import UTC, datetime

import pytest

from shop_grpc.money import Money
from shop_payment.domain.errors import (
    NotRefundable,
    RefundCurrencyMismatch,
    RefundExceedsBalance,
)
from shop_payment.domain.model import PaymentMethod, PaymentStatus, new_payment

T0 = datetime(2030, 1, 1, tzinfo=UTC)
T1 = datetime(2030, 1, 2, tzinfo=UTC)
METHOD = PaymentMethod("pm-1", "visa", "4242", 12, 2031, "approve", T0)


def payment(status=PaymentStatus.SUCCEEDED, amount=1000):
    return new_payment("order-1", METHOD, Money("USD", amount), status, "", T0)


def test_partial_refund_keeps_the_payment_succeeded():
    updated, refund = payment().refund(Money("USD", 300), "r1", T1)
    assert updated.refunded == Money("USD", 300)
    assert updated.left == Money("USD", 700)
    assert updated.status == PaymentStatus.SUCCEEDED
    assert updated.update_time == T1
    assert (refund.amount, refund.request_id, refund.payment_id) == (
        Money("USD", 300),
        "r1",
        updated.payment_id,
    )


def test_refunding_everything_left_marks_it_refunded():
    first, _ = payment().refund(Money("USD", 300), "r1", T1)
    second, refund = first.refund(None, "r2", T1)
    assert refund.amount == Money("USD", 700)
    assert second.refunded == Money("USD", 1000)
    assert second.status == PaymentStatus.REFUNDED


def test_exact_remaining_amount_marks_it_refunded():
    updated, _ = payment().refund(Money("USD", 1000), "r1", T1)
    assert updated.status == PaymentStatus.REFUNDED


def test_refund_cannot_exceed_what_is_left():
    first, _ = payment().refund(Money("USD", 600), "r1", T1)
    with pytest.raises(RefundExceedsBalance, match=r"exceeds the 4\.00 USD left"):
        first.refund(Money("USD", 401), "r2", T1)


@pytest.mark.parametrize(
    "status", [PaymentStatus.DECLINED, PaymentStatus.FAILED, PaymentStatus.REFUNDED]
)
def test_only_succeeded_payments_are_refundable(status):
    with pytest.raises(NotRefundable):
        payment(status).refund(None, "r1", T1)


def test_fully_refunded_payment_refuses_more():
    done, _ = payment().refund(None, "r1", T1)
    with pytest.raises(NotRefundable):
        done.refund(Money("USD", 1), "r2", T1)


def test_refund_currency_must_match():
    with pytest.raises(RefundCurrencyMismatch):
        payment().refund(Money("EUR", 100), "r1", T1)


def test_refund_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        payment().refund(Money("USD", 0), "r1", T1)


def test_new_payment_starts_with_nothing_refunded():
    p = replace(payment(), failure_code="")
    assert p.refunded == Money("USD", 0)
    assert p.card_last4 == "4242"
    assert p.create_time == p.update_time == T0
