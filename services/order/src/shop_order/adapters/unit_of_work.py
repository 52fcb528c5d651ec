"""The order service's unit of work on SQL: the shared one, with the order repository."""

from __future__ import annotations

from shop_grpc import storage
from shop_order.adapters.repository import OrderRepository


class SqlUnitOfWork(storage.UnitOfWork):
    orders: OrderRepository

    def bind(self, session: storage.Session) -> None:
        self.orders = OrderRepository(session)
