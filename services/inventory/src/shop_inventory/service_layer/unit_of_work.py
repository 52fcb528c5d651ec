"""What the use cases need from storage, and its SQL implementation.

The use cases depend only on the protocols below, so unit tests can hand them
in-memory fakes; ``SqlUnitOfWork`` is the real thing.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from shop_grpc.changes import ChangeSignal
from shop_grpc.storage import Database, Transaction
from shop_grpc.storage import UnitOfWork as BaseUnitOfWork
from shop_inventory.adapters.repository import (
    ImportBatchRepository,
    ProductRepository,
    ReservationRepository,
    StockRepository,
)
from shop_inventory.domain.model import Product, Reservation, StockLevel


class Products(Protocol):
    async def add(self, product: Product, request_id: str) -> bool: ...
    async def get(self, product_id: str) -> Product | None: ...
    async def get_many(self, product_ids: Iterable[str]) -> dict[str, Product]: ...
    async def request_id_of(self, product_id: str) -> str | None: ...
    async def created_by(self, request_id: str) -> Product | None: ...
    async def list_after(self, after: str | None, limit: int) -> list[Product]: ...


class Stock(Protocol):
    async def add(self, level: StockLevel) -> None: ...
    async def get_many(self, product_ids: Iterable[str]) -> dict[str, StockLevel]: ...
    async def lock(self, product_ids: Iterable[str]) -> dict[str, StockLevel]: ...
    async def save(self, levels: Iterable[StockLevel]) -> None: ...


class Reservations(Protocol):
    async def add(self, reservation: Reservation) -> bool: ...
    async def get(self, order_id: str, *, lock: bool = False) -> Reservation | None: ...
    async def lock_overdue(self, now: datetime, limit: int) -> list[Reservation]: ...
    async def save_state(self, reservation: Reservation, now: datetime) -> None: ...


class ImportBatches(Protocol):
    async def add(
        self, request_id: str, fingerprint: str, lines_applied: int, now: datetime
    ) -> bool: ...
    async def fingerprint_of(self, request_id: str) -> str | None: ...


class UnitOfWork(Transaction, Protocol):
    """One transaction over the inventory; uncommitted work is rolled back on exit."""

    # Read-only properties, so an implementation may narrow their types.
    @property
    def products(self) -> Products: ...
    @property
    def stock(self) -> Stock: ...
    @property
    def reservations(self) -> Reservations: ...
    @property
    def imports(self) -> ImportBatches: ...


class SqlUnitOfWork(BaseUnitOfWork):
    products: ProductRepository
    stock: StockRepository
    reservations: ReservationRepository
    imports: ImportBatchRepository

    def __init__(self, db: Database, changes: ChangeSignal | None = None) -> None:
        super().__init__(db)
        self.changes = changes

    def bind(self, session: AsyncSession) -> None:
        self.products = ProductRepository(session)
        self.stock = StockRepository(session)
        self.reservations = ReservationRepository(session)
        self.imports = ImportBatchRepository(session)

    async def commit(self) -> None:
        await super().commit()
        if self.stock.changed and self.changes is not None:
            self.stock.changed = False
            self.changes.notify()
