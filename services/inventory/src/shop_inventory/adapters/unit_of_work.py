"""The inventory's unit of work on SQL: the shared one, with the inventory's repositories;
a commit that wrote stock wakes the watchers."""

from __future__ import annotations

from shop_grpc import storage
from shop_grpc.changes import ChangeSignal
from shop_inventory.adapters.repository import (
    ImportBatchRepository,
    ProductRepository,
    ReservationRepository,
    StockRepository,
)


class SqlUnitOfWork(storage.UnitOfWork):
    products: ProductRepository
    stock: StockRepository
    reservations: ReservationRepository
    imports: ImportBatchRepository

    def __init__(
        self, db: storage.Database, changes: ChangeSignal | None = None, *, readonly: bool = False
    ) -> None:
        super().__init__(db, readonly=readonly)
        self.changes = changes

    def bind(self, session: storage.Session) -> None:
        self.products = ProductRepository(session)
        self.stock = StockRepository(session)
        self.reservations = ReservationRepository(session)
        self.imports = ImportBatchRepository(session)

    async def commit(self) -> None:
        await super().commit()
        if self.stock.changed and self.changes is not None:
            self.stock.changed = False
            self.changes.notify()
