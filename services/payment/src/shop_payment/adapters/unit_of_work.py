"""The payment service's unit of work on SQL: the shared one, with the payment repository."""

from __future__ import annotations

from shop_grpc import storage
from shop_payment.adapters.repository import SqlPaymentRepository


class SqlUnitOfWork(storage.UnitOfWork):
    payments: SqlPaymentRepository

    def bind(self, session: storage.Session) -> None:
        self.payments = SqlPaymentRepository(session, is_postgres=self.is_postgres)
