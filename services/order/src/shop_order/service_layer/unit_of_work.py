"""A transaction over the order tables."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from shop_grpc.storage import UnitOfWork
from shop_order.adapters.repository import OrderRepository


class OrderUnitOfWork(UnitOfWork):
    orders: OrderRepository

    def bind(self, session: AsyncSession) -> None:
        self.orders = OrderRepository(session)


class UnitOfWorkFactory(Protocol):
    """Opens a transaction; read-only ones run beside writers instead of queueing."""

    def __call__(self, *, readonly: bool = False) -> OrderUnitOfWork: ...
