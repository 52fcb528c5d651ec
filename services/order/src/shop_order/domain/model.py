"""Orders and the state of their saga; plain Python, no I/O."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from shop_grpc.money import Money


class Status(enum.StrEnum):
    """What the customer sees."""

    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


class Step(enum.StrEnum):
    """Where the saga is. Forward steps run in this order; the undo steps after them."""

    ACCEPTED = "ACCEPTED"
    CHECKING_USER = "CHECKING_USER"
    RESERVING_STOCK = "RESERVING_STOCK"
    CHARGING_PAYMENT = "CHARGING_PAYMENT"
    COMMITTING_STOCK = "COMMITTING_STOCK"
    REFUNDING_PAYMENT = "REFUNDING_PAYMENT"
    RELEASING_STOCK = "RELEASING_STOCK"
    DONE = "DONE"


FORWARD_STEPS = (
    Step.ACCEPTED,
    Step.CHECKING_USER,
    Step.RESERVING_STOCK,
    Step.CHARGING_PAYMENT,
    Step.COMMITTING_STOCK,
)
UNDO_STEPS = (Step.REFUNDING_PAYMENT, Step.RELEASING_STOCK)


@dataclass
class OrderLine:
    product_id: str
    quantity: int
    unit_price: Money | None = None


@dataclass
class Order:
    order_id: str
    user_id: str
    lines: list[OrderLine]
    payment_method_id: str
    request_id: str
    # What the request behind request_id said (shop_grpc.idempotency), to tell a retry from
    # another request that reuses the key.
    request_fingerprint: str = ""
    status: Status = Status.PENDING
    step: Step = Step.ACCEPTED
    # Where an undo ends: FAILED, or CANCELLED when the customer asked.
    undo_outcome: Status | None = None
    failure_reason: str = ""
    payment_id: str = ""
    total: Money | None = None
    cancel_requested: bool = False
    # Written just before the charge is sent: from then on the card may have been charged.
    charge_attempted: bool = False
    # Failed tries of the current step in a row, so retries come less and less often.
    attempts: int = 0
    create_time: datetime | None = None
    update_time: datetime | None = None

    @property
    def is_final(self) -> bool:
        """Nothing left to do: done, and no cancel waiting to undo a confirmed order."""
        return self.step is Step.DONE and not self.awaits_cancel

    @property
    def awaits_cancel(self) -> bool:
        return self.cancel_requested and self.status is Status.CONFIRMED

    @property
    def is_undoing(self) -> bool:
        return self.step in UNDO_STEPS

    @property
    def is_moving_forward(self) -> bool:
        return self.step in FORWARD_STEPS


@dataclass(frozen=True)
class Lease:
    """Who may drive an order's saga: a replica (owner) in one of its boots (token)."""

    owner: str
    token: str
    seconds: float

    def until(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.seconds)
