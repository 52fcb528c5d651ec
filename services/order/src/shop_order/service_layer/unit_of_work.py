"""What the order use cases need from storage: orders, and the leases that let several
replicas share the saga work. ``adapters.unit_of_work`` is the SQL implementation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from shop_grpc.storage import Transaction, TransactionFactory
from shop_order.domain.model import Lease, Order


@dataclass(frozen=True)
class Backlog:
    """The orders with saga work left (unfinished, or confirmed with a cancel waiting)."""

    unfinished: int
    oldest_create_time: datetime | None
    """When the oldest of them was placed; None when there are none."""


class Orders(Protocol):
    async def add(self, order: Order, lease: Lease, now: datetime) -> None: ...
    async def get(self, order_id: str, *, for_update: bool = False) -> Order | None: ...
    async def get_by_request_id(self, request_id: str) -> Order | None: ...
    async def list_for_user(
        self, user_id: str, after: tuple[datetime, str] | None, limit: int
    ) -> list[Order]: ...

    async def save(self, order: Order, lease: Lease, now: datetime, *, lines: bool) -> None:
        """Writes the saga's progress if `lease` still holds the order, else LeaseLost."""
        ...

    async def renew(self, order_id: str, lease: Lease, now: datetime) -> bool:
        """Extends `lease`, or LeaseLost; whether a cancel was asked for meanwhile."""
        ...

    async def save_unleased(self, order: Order, now: datetime) -> None: ...
    async def reopen(self, order: Order, lease: Lease, now: datetime) -> None: ...
    async def claim(self, order_id: str, lease: Lease, now: datetime) -> bool: ...
    async def claim_unfinished(self, lease: Lease, now: datetime, limit: int) -> list[str]: ...
    async def release(self, order: Order, lease: Lease, retry_at: datetime | None) -> None: ...
    async def backlog(self) -> Backlog: ...


class UnitOfWork(Transaction, Protocol):
    """One transaction over the orders; uncommitted work is rolled back on exit."""

    # A read-only property, so an implementation may narrow its type.
    @property
    def orders(self) -> Orders: ...


UnitOfWorkFactory = TransactionFactory[UnitOfWork]
