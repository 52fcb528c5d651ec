"""What must hold after a load run, as pure rules over facts gathered from the services.

Stock: for each product, initial available - final available equals the
units in CONFIRMED orders, and nothing stays reserved.
Money: an order is CONFIRMED exactly when it has one SUCCEEDED payment for
its total with nothing refunded; any other final order has no payment, a
DECLINED or FAILED one, or one REFUNDED in full.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

FINAL_STATUSES = frozenset({"CONFIRMED", "FAILED", "CANCELLED"})
UNPAID_PAYMENT_STATUSES = frozenset({"DECLINED", "FAILED"})


@dataclass(frozen=True)
class OrderFacts:
    order_id: str
    status: str
    """Order status without its prefix: CONFIRMED, FAILED, CANCELLED, PENDING."""
    total_minor: int
    currency: str
    quantities: Mapping[str, int] = field(default_factory=dict)
    """Units per product id."""
    payment_id: str = ""


@dataclass(frozen=True)
class PaymentFacts:
    payment_id: str
    status: str
    """Payment status without its prefix: SUCCEEDED, DECLINED, FAILED, REFUNDED."""
    amount_minor: int
    currency: str
    refunded_minor: int


@dataclass(frozen=True)
class StockFacts:
    available: int
    reserved: int


@dataclass(frozen=True)
class StockCheck:
    product_id: str
    initial_available: int
    final_available: int
    confirmed_units: int
    reserved: int

    @property
    def taken(self) -> int:
        return self.initial_available - self.final_available

    @property
    def ok(self) -> bool:
        return self.taken == self.confirmed_units and self.reserved == 0


@dataclass(frozen=True)
class Violation:
    subject: str
    """A product or order id."""
    rule: str
    detail: str


def confirmed_units(orders: Iterable[OrderFacts]) -> dict[str, int]:
    units: dict[str, int] = {}
    for order in orders:
        if order.status == "CONFIRMED":
            for product_id, quantity in order.quantities.items():
                units[product_id] = units.get(product_id, 0) + quantity
    return units


def stock_checks(
    initial: Mapping[str, StockFacts],
    final: Mapping[str, StockFacts],
    orders: Iterable[OrderFacts],
) -> list[StockCheck]:
    units = confirmed_units(orders)
    return [
        StockCheck(
            product_id=product_id,
            initial_available=initial[product_id].available,
            final_available=final[product_id].available,
            confirmed_units=units.get(product_id, 0),
            reserved=final[product_id].reserved,
        )
        for product_id in sorted(initial)
    ]


def stock_violations(checks: Iterable[StockCheck]) -> list[Violation]:
    found: list[Violation] = []
    for check in checks:
        if check.taken != check.confirmed_units:
            found.append(
                Violation(
                    check.product_id,
                    "stock",
                    f"available dropped by {check.taken} but CONFIRMED orders hold "
                    f"{check.confirmed_units}",
                )
            )
        if check.reserved:
            found.append(
                Violation(check.product_id, "reserved", f"{check.reserved} units still reserved")
            )
    return found


def order_violations(order: OrderFacts, payments: Sequence[PaymentFacts]) -> list[Violation]:
    """The money rules for one order given every payment listed for it."""
    if order.status not in FINAL_STATUSES:
        return [Violation(order.order_id, "final", f"still {order.status}")]
    if len(payments) > 1:
        ids = ", ".join(p.payment_id for p in payments)
        return [Violation(order.order_id, "one-payment", f"{len(payments)} payments: {ids}")]
    payment = payments[0] if payments else None
    if order.status == "CONFIRMED":
        return _confirmed_violations(order, payment)
    return _unconfirmed_violations(order, payment)


def _confirmed_violations(order: OrderFacts, payment: PaymentFacts | None) -> list[Violation]:
    if payment is None:
        return [Violation(order.order_id, "paid", "CONFIRMED without a payment")]
    found: list[Violation] = []
    if payment.status != "SUCCEEDED":
        found.append(
            Violation(order.order_id, "paid", f"CONFIRMED but payment is {payment.status}")
        )
    if (payment.amount_minor, payment.currency) != (order.total_minor, order.currency):
        found.append(
            Violation(
                order.order_id,
                "amount",
                f"charged {payment.amount_minor} {payment.currency}, "
                f"total is {order.total_minor} {order.currency}",
            )
        )
    if payment.refunded_minor:
        found.append(
            Violation(order.order_id, "refund", f"CONFIRMED but {payment.refunded_minor} refunded")
        )
    if order.payment_id and order.payment_id != payment.payment_id:
        found.append(
            Violation(
                order.order_id,
                "payment-id",
                f"order names payment {order.payment_id}, listed is {payment.payment_id}",
            )
        )
    return found


def _unconfirmed_violations(order: OrderFacts, payment: PaymentFacts | None) -> list[Violation]:
    if payment is None or payment.status in UNPAID_PAYMENT_STATUSES:
        return []
    if payment.status == "REFUNDED" and payment.refunded_minor == payment.amount_minor:
        return []
    return [
        Violation(
            order.order_id,
            "unpaid",
            f"{order.status} but payment {payment.payment_id} is {payment.status} "
            f"({payment.refunded_minor} of {payment.amount_minor} refunded)",
        )
    ]


def all_violations(
    checks: Iterable[StockCheck],
    orders: Iterable[OrderFacts],
    payments: Mapping[str, Sequence[PaymentFacts]],
) -> list[Violation]:
    found = stock_violations(checks)
    for order in orders:
        found += order_violations(order, payments.get(order.order_id, []))
    return found
