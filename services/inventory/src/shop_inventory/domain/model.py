"""Products, their stock levels and the reservations that hold stock for orders.

Stock moves between three buckets and never goes negative:

    available --reserve--> reserved --commit--> sold
    available <--release/expire-- reserved
    available <--------return (release)-------- sold

A reservation is made at most once per order. Once RELEASED or EXPIRED it is
closed: the order cannot hold stock again. Releasing an order that has no
reservation yet closes it too, with a tombstone (a RELEASED reservation without
lines), so a reserve that arrives after the order was undone holds nothing.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from shop_grpc.errors import PreconditionViolation
from shop_grpc.money import Money
from shop_inventory.domain.errors import (
    MixedCurrencies,
    OutOfStock,
    ProductNotFound,
    ReservationClosed,
    ReservationExpired,
    ReservationMismatch,
    ReservationReleased,
)


@dataclass(frozen=True)
class Product:
    product_id: str
    title: str
    description: str
    price: Money
    create_time: datetime

    def same_as(self, other: Product) -> bool:
        """True if both describe the same product (create times aside)."""
        mine = (self.product_id, self.title, self.description, self.price)
        return mine == (other.product_id, other.title, other.description, other.price)


@dataclass
class StockLevel:
    product_id: str
    update_time: datetime
    available: int = 0
    reserved: int = 0
    sold: int = 0

    def receive(self, quantity: int, now: datetime) -> None:
        self._move(quantity, now, available=+1)

    def shortfall(self, quantity: int) -> PreconditionViolation | None:
        if quantity <= self.available:
            return None
        return PreconditionViolation(
            "STOCK", self.product_id, f"requested {quantity}, available {self.available}"
        )

    def hold(self, quantity: int, now: datetime) -> None:
        self._move(quantity, now, available=-1, reserved=+1)

    def sell(self, quantity: int, now: datetime) -> None:
        self._move(quantity, now, reserved=-1, sold=+1)

    def unhold(self, quantity: int, now: datetime) -> None:
        self._move(quantity, now, reserved=-1, available=+1)

    def take_back(self, quantity: int, now: datetime) -> None:
        self._move(quantity, now, sold=-1, available=+1)

    def _move(
        self, quantity: int, now: datetime, *, available: int = 0, reserved: int = 0, sold: int = 0
    ) -> None:
        after = (
            self.available + available * quantity,
            self.reserved + reserved * quantity,
            self.sold + sold * quantity,
        )
        # Callers check first; reaching this is a bug, and the database CHECKs back it up.
        if quantity <= 0 or min(after) < 0:
            raise ValueError(f"stock of {self.product_id} cannot move {quantity} units that way")
        self.available, self.reserved, self.sold = after
        self.update_time = now


class ReservationState(enum.Enum):
    PENDING = "PENDING"
    COMMITTED = "COMMITTED"
    RELEASED = "RELEASED"
    EXPIRED = "EXPIRED"


@dataclass(frozen=True)
class ReservedLine:
    product_id: str
    quantity: int
    unit_price: Money

    @property
    def total(self) -> Money:
        return self.unit_price * self.quantity


Levels = Mapping[str, StockLevel]


@dataclass
class Reservation:
    order_id: str
    lines: tuple[ReservedLine, ...]
    state: ReservationState
    expire_time: datetime
    create_time: datetime

    @property
    def total(self) -> Money | None:
        """The sum of the lines; None for a tombstone, which has none."""
        if not self.lines:
            return None
        total = Money.zero(self.lines[0].unit_price.currency)
        for line in self.lines:
            total += line.total
        return total

    @property
    def product_ids(self) -> list[str]:
        return [line.product_id for line in self.lines]

    def is_overdue(self, now: datetime) -> bool:
        return self.state is ReservationState.PENDING and now >= self.expire_time

    def ensure_open(self) -> None:
        """Refuses to stand for a new hold once released or expired."""
        if self.state in (ReservationState.RELEASED, ReservationState.EXPIRED):
            raise ReservationClosed(self.order_id, self.state.value.lower())

    def ensure_same_lines(self, requested: Sequence[tuple[str, int]]) -> None:
        held = {line.product_id: line.quantity for line in self.lines}
        if held != dict(requested):
            raise ReservationMismatch(self.order_id)

    def commit(self, levels: Levels, now: datetime) -> bool:
        """Sells the held stock; True if anything changed."""
        if self.state is ReservationState.RELEASED:
            raise ReservationReleased(self.order_id)
        if self.state is ReservationState.EXPIRED:
            raise ReservationExpired(self.order_id)
        if self.state is ReservationState.COMMITTED:
            return False
        for line in self.lines:
            levels[line.product_id].sell(line.quantity, now)
        self.state = ReservationState.COMMITTED
        return True

    def release(self, levels: Levels, now: datetime) -> bool:
        """Puts held or sold stock back on the shelf; True if anything changed."""
        if self.state is ReservationState.PENDING:
            for line in self.lines:
                levels[line.product_id].unhold(line.quantity, now)
        elif self.state is ReservationState.COMMITTED:
            for line in self.lines:
                levels[line.product_id].take_back(line.quantity, now)
        else:
            return False
        self.state = ReservationState.RELEASED
        return True

    def expire(self, levels: Levels, now: datetime) -> None:
        if self.state is not ReservationState.PENDING:
            raise ValueError(f"only a pending reservation expires, {self.order_id} is {self.state}")
        for line in self.lines:
            levels[line.product_id].unhold(line.quantity, now)
        self.state = ReservationState.EXPIRED


def reserve(
    order_id: str,
    requested: Sequence[tuple[str, int]],
    products: Mapping[str, Product],
    levels: Levels,
    now: datetime,
    ttl: timedelta,
) -> Reservation:
    """Holds every requested line or, raising, none of them."""
    for product_id, _ in requested:
        if product_id not in products or product_id not in levels:
            raise ProductNotFound(product_id)
    currencies = sorted({products[product_id].price.currency for product_id, _ in requested})
    if len(currencies) > 1:
        raise MixedCurrencies(currencies)
    short = [levels[pid].shortfall(quantity) for pid, quantity in requested]
    violations = [v for v in short if v is not None]
    if violations:
        raise OutOfStock(violations)
    for product_id, quantity in requested:
        levels[product_id].hold(quantity, now)
    lines = tuple(
        ReservedLine(product_id, quantity, products[product_id].price)
        for product_id, quantity in requested
    )
    return Reservation(order_id, lines, ReservationState.PENDING, now + ttl, now)


def tombstone(order_id: str, now: datetime) -> Reservation:
    """What releasing an order without a reservation leaves: closed, holding nothing."""
    return Reservation(order_id, (), ReservationState.RELEASED, now, now)
