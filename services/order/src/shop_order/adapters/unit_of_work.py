"""The order service's unit of work on SQL: the shared one, with the order repository."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from shop_grpc import storage
from shop_order.adapters.repository import OrderRepository


class SqlUnitOfWork(storage.UnitOfWork):
    orders: OrderRepository

    def bind(self, session: AsyncSession) -> None:
        self.orders = OrderRepository(session)
