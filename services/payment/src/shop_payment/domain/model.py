"""Payment methods, payments and refunds: plain values, no I/O."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from shop_grpc.money import Money
from shop_payment.domain.errors import NotRefundable, RefundCurrencyMismatch, RefundExceedsBalance


class PaymentStatus(StrEnum):
    SUCCEEDED = "SUCCEEDED"
    DECLINED = "DECLINED"
    FAILED = "FAILED"
    REFUNDED = "REFUNDED"


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class PaymentMethod:
    """A tokenized card: what is left of it once the number and CVC are gone."""

    payment_method_id: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    processor_token: str
    """What the processor needs to charge the card; never the number."""
    create_time: datetime
    request_id: str = ""


@dataclass(frozen=True)
class Refund:
    refund_id: str
    payment_id: str
    request_id: str
    amount: Money
    create_time: datetime
    requested: Money | None = None
    """What the request asked for; None: everything that was left (then `amount` says how
    much that was). A replay of the request_id must ask for the same."""

    def answers(self, payment_id: str, requested: Money | None) -> bool:
        """True if a request for `requested` from `payment_id` is this refund's request again."""
        return (self.payment_id, self.requested) == (payment_id, requested)


@dataclass(frozen=True)
class Payment:
    payment_id: str
    order_id: str
    payment_method_id: str
    amount: Money
    refunded: Money
    status: PaymentStatus
    failure_code: str
    card_last4: str
    create_time: datetime
    update_time: datetime

    @property
    def left(self) -> Money:
        """What can still be refunded."""
        return self.amount - self.refunded

    def refund(
        self, amount: Money | None, request_id: str, now: datetime
    ) -> tuple[Payment, Refund]:
        """The payment after refunding `amount` (everything left when None), and the refund."""
        if self.status != PaymentStatus.SUCCEEDED:
            raise NotRefundable(self.payment_id, self.status.value)
        wanted = self.left if amount is None else amount
        if wanted.currency != self.amount.currency:
            raise RefundCurrencyMismatch(self.payment_id, self.amount.currency, wanted.currency)
        if wanted.amount_minor <= 0:
            raise ValueError("a refund must be positive")
        if wanted > self.left:
            raise RefundExceedsBalance(self.payment_id, wanted, self.left)
        refunded = self.refunded + wanted
        status = PaymentStatus.REFUNDED if refunded == self.amount else self.status
        updated = replace(self, refunded=refunded, status=status, update_time=now)
        return updated, Refund(new_id(), self.payment_id, request_id, wanted, now, amount)


def new_payment(
    order_id: str,
    method: PaymentMethod,
    amount: Money,
    status: PaymentStatus,
    failure_code: str,
    now: datetime,
) -> Payment:
    return Payment(
        payment_id=new_id(),
        order_id=order_id,
        payment_method_id=method.payment_method_id,
        amount=amount,
        refunded=Money.zero(amount.currency),
        status=status,
        failure_code=failure_code,
        card_last4=method.last4,
        create_time=now,
        update_time=now,
    )
