"""What the order service needs from the other services, as plain Python.

The gRPC implementations live in ``adapters.clients``; tests use fakes. Every
method raises shop_grpc.errors: a ``retryable`` one (Unavailable, DeadlineExceeded,
Aborted) means "try again later"; any other is an answer that the same call would
get again.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Protocol

from shop_grpc.money import Money
from shop_order.domain.model import OrderLine


@dataclass(frozen=True)
class Card:
    number: str = field(repr=False)
    exp_month: int
    exp_year: int
    cvc: str = field(repr=False)


@dataclass(frozen=True)
class Reservation:
    lines: list[OrderLine]
    total: Money


class PaymentOutcome(enum.StrEnum):
    SUCCEEDED = "SUCCEEDED"
    DECLINED = "DECLINED"
    FAILED = "FAILED"
    REFUNDED = "REFUNDED"


@dataclass(frozen=True)
class Payment:
    payment_id: str
    outcome: PaymentOutcome
    failure_code: str = ""


@dataclass(frozen=True)
class ProductOffer:
    product_id: str
    title: str
    unit_price: Money
    available: int


class Users(Protocol):
    async def ensure_exists(self, user_id: str) -> None: ...


class Inventory(Protocol):
    async def reserve(self, order_id: str, lines: list[OrderLine]) -> Reservation: ...

    async def commit(self, order_id: str) -> None: ...

    async def release(self, order_id: str) -> None: ...

    async def offer(self, product_id: str) -> ProductOffer: ...


class Payments(Protocol):
    async def create_payment_method(self, card: Card, request_id: str) -> str: ...

    async def charge(self, order_id: str, payment_method_id: str, amount: Money) -> Payment: ...

    async def refund_all(self, payment_id: str, request_id: str) -> None: ...


@dataclass(frozen=True)
class Dependencies:
    users: Users
    inventory: Inventory
    payments: Payments
