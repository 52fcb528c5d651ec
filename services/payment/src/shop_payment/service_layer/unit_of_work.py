"""What the use cases need from storage, and its SQL implementation."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from shop_grpc.storage import Transaction, UnitOfWork
from shop_payment.adapters.repository import SqlPaymentRepository
from shop_payment.domain.model import Payment, PaymentMethod, Refund

PageKey = tuple[datetime, str]


class PaymentRepository(Protocol):
    """Inserts raise DuplicateKey when a unique key (order, request_id) is taken."""

    async def add_method(self, method: PaymentMethod) -> None: ...
    async def get_method(self, payment_method_id: str) -> PaymentMethod | None: ...
    async def method_for_request(self, request_id: str) -> PaymentMethod | None: ...
    async def lock_order(self, order_id: str) -> None: ...
    async def payment_for_order(self, order_id: str) -> Payment | None: ...
    async def get_payment(self, payment_id: str, *, for_update: bool = False) -> Payment | None: ...
    async def add_payment(self, payment: Payment) -> None: ...
    async def list_payments(
        self, order_id: str, after: PageKey | None, limit: int
    ) -> list[Payment]: ...
    async def refund_for_request(self, request_id: str) -> Refund | None: ...
    async def save_refund(self, before: Payment, after: Payment, refund: Refund) -> None: ...


class PaymentUnitOfWork(Transaction, Protocol):
    """One transaction per ``async with``; leaving it without commit() rolls back."""

    @property
    def payments(self) -> PaymentRepository: ...


class SqlUnitOfWork(UnitOfWork):
    payments: SqlPaymentRepository

    def bind(self, session: AsyncSession) -> None:
        self.payments = SqlPaymentRepository(session, is_postgres=self.is_postgres)
