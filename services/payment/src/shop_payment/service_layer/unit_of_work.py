"""What the payment use cases need from storage. ``adapters.unit_of_work`` is the SQL
implementation; unit tests hand in fakes."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from shop_grpc.storage import Transaction, TransactionFactory
from shop_payment.domain.model import Payment, PaymentMethod, Refund

PageKey = tuple[datetime, str]


class PaymentRepository(Protocol):
    """A write whose unique key (order, request_id) a concurrent one took first fails its
    unit of work with storage.DuplicateKey."""

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


class UnitOfWork(Transaction, Protocol):
    """One transaction over the payments; uncommitted work is rolled back on exit."""

    # A read-only property, so an implementation may narrow its type.
    @property
    def payments(self) -> PaymentRepository: ...


UnitOfWorkFactory = TransactionFactory[UnitOfWork]
