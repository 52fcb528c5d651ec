"""Payment storage on SQLAlchemy Core, for SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, insert, or_, select, text, update

from shop_grpc.errors import Aborted
from shop_grpc.money import Money
from shop_grpc.storage import Session
from shop_payment.adapters.orm import payment_methods, payments, refunds
from shop_payment.domain.model import Payment, PaymentMethod, PaymentStatus, Refund

PageKey = tuple[datetime, str]


class SqlPaymentRepository:
    def __init__(self, session: Session, *, is_postgres: bool) -> None:
        self.session = session
        self.is_postgres = is_postgres

    # payment methods

    async def add_method(self, method: PaymentMethod) -> None:
        values = {
            "payment_method_id": method.payment_method_id,
            "brand": method.brand,
            "last4": method.last4,
            "exp_month": method.exp_month,
            "exp_year": method.exp_year,
            "processor_token": method.processor_token,
            "request_id": method.request_id or None,
            "create_time": method.create_time,
        }
        await self.session.execute(insert(payment_methods).values(**values))

    async def get_method(self, payment_method_id: str) -> PaymentMethod | None:
        query = select(payment_methods).where(
            payment_methods.c.payment_method_id == payment_method_id
        )
        row = (await self.session.execute(query)).mappings().first()
        return _method(row) if row else None

    async def method_for_request(self, request_id: str) -> PaymentMethod | None:
        query = select(payment_methods).where(payment_methods.c.request_id == request_id)
        row = (await self.session.execute(query)).mappings().first()
        return _method(row) if row else None

    # payments

    async def lock_order(self, order_id: str) -> None:
        """Holds the order until commit, so concurrent charges of it queue up.

        Without it, replicas racing on one order would each call the processor
        and only the unique index would stop the second payment, after the
        card was charged twice. SQLite transactions are serialized already.
        """
        if self.is_postgres:
            await self.session.execute(
                text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                {"key": f"shop.payment.charge:{order_id}"},
            )

    async def payment_for_order(self, order_id: str) -> Payment | None:
        return await self._one(select(payments).where(payments.c.order_id == order_id))

    async def get_payment(self, payment_id: str, *, for_update: bool = False) -> Payment | None:
        query = select(payments).where(payments.c.payment_id == payment_id)
        return await self._one(query.with_for_update() if for_update else query)

    async def add_payment(self, payment: Payment) -> None:
        await self.session.execute(
            insert(payments).values(
                payment_id=payment.payment_id,
                order_id=payment.order_id,
                payment_method_id=payment.payment_method_id,
                currency=payment.amount.currency,
                amount_minor=payment.amount.amount_minor,
                refunded_minor=payment.refunded.amount_minor,
                status=payment.status.value,
                failure_code=payment.failure_code,
                card_last4=payment.card_last4,
                create_time=payment.create_time,
                update_time=payment.update_time,
            )
        )

    async def list_payments(
        self, order_id: str, after: PageKey | None, limit: int
    ) -> list[Payment]:
        """Newest first; `after` is the (create_time, payment_id) of the last one seen."""
        query = select(payments)
        if order_id:
            query = query.where(payments.c.order_id == order_id)
        if after is not None:
            time, payment_id = after
            query = query.where(
                or_(
                    payments.c.create_time < time,
                    and_(payments.c.create_time == time, payments.c.payment_id < payment_id),
                )
            )
        query = query.order_by(payments.c.create_time.desc(), payments.c.payment_id.desc())
        rows = (await self.session.execute(query.limit(limit))).mappings().all()
        return [_payment(row) for row in rows]

    # refunds

    async def refund_for_request(self, request_id: str) -> Refund | None:
        query = select(refunds).where(refunds.c.request_id == request_id)
        row = (await self.session.execute(query)).mappings().first()
        return _refund(row) if row else None

    async def save_refund(self, before: Payment, after: Payment, refund: Refund) -> None:
        await self.session.execute(
            insert(refunds).values(
                refund_id=refund.refund_id,
                payment_id=refund.payment_id,
                request_id=refund.request_id,
                currency=refund.amount.currency,
                amount_minor=refund.amount.amount_minor,
                requested_minor=None if refund.requested is None else refund.requested.amount_minor,
                create_time=refund.create_time,
            )
        )
        # Conditional on what was read: a lost update shows up as no row changed.
        result = await self.session.execute(
            update(payments)
            .where(
                payments.c.payment_id == before.payment_id,
                payments.c.refunded_minor == before.refunded.amount_minor,
            )
            .values(
                refunded_minor=after.refunded.amount_minor,
                status=after.status.value,
                update_time=after.update_time,
            )
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise Aborted("the payment changed while it was being refunded; retry")

    async def _one(self, query: Select[Any]) -> Payment | None:
        row = (await self.session.execute(query)).mappings().first()
        return _payment(row) if row else None


def _method(row: Any) -> PaymentMethod:
    return PaymentMethod(
        payment_method_id=row["payment_method_id"],
        brand=row["brand"],
        last4=row["last4"],
        exp_month=row["exp_month"],
        exp_year=row["exp_year"],
        processor_token=row["processor_token"],
        create_time=row["create_time"],
        request_id=row["request_id"] or "",
    )


def _payment(row: Any) -> Payment:
    currency = row["currency"]
    return Payment(
        payment_id=row["payment_id"],
        order_id=row["order_id"],
        payment_method_id=row["payment_method_id"],
        amount=Money(currency, row["amount_minor"]),
        refunded=Money(currency, row["refunded_minor"]),
        status=PaymentStatus(row["status"]),
        failure_code=row["failure_code"],
        card_last4=row["card_last4"],
        create_time=row["create_time"],
        update_time=row["update_time"],
    )


def _refund(row: Any) -> Refund:
    return Refund(
        refund_id=row["refund_id"],
        payment_id=row["payment_id"],
        request_id=row["request_id"],
        amount=Money(row["currency"], row["amount_minor"]),
        create_time=row["create_time"],
        requested=None
        if row["requested_minor"] is None
        else Money(row["currency"], row["requested_minor"]),
    )
