"""A transaction over the order tables."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from shop_grpc.storage import UnitOfWork
from shop_order.adapters.repository import OrderRepository


class OrderUnitOfWork(UnitOfWork):
    orders: OrderRepository

    def bind(self, session: AsyncSession) -> None:
        self.orders = OrderRepository(session)
