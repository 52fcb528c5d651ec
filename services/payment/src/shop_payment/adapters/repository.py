"""Payment storage on SQLAlchemy Core, for SQLite and PostgreSQL alike.

Every statement is built once, with bound parameters, so that SQLAlchemy finds it compiled
in its cache from a key computed once instead of building it and its key again on every
call, which cost more than running it.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, Select, and_, bindparam, insert, or_, select, text, update

from shop_grpc.errors import Aborted
from shop_grpc.money import Money
from shop_grpc.storage import Session
from shop_payment.adapters.orm import payment_methods, payments, refunds
from shop_payment.domain.model import Payment, PaymentMethod, PaymentStatus, Refund

PageKey = tuple[datetime, str]

_INSERT_METHOD = insert(payment_methods)
_METHOD = select(payment_methods).where(
    payment_methods.c.payment_method_id == bindparam("payment_method_id")
)
_METHOD_FOR_REQUEST = select(payment_methods).where(
    payment_methods.c.request_id == bindparam("request_id")
)
_LOCK_ORDER = text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")
_PAYMENT_FOR_ORDER = select(payments).where(payments.c.order_id == bindparam("order_id"))
_PAYMENT = select(payments).where(payments.c.payment_id == bindparam("payment_id"))
_PAYMENT_FOR_UPDATE = _PAYMENT.with_for_update()
_INSERT_PAYMENT = insert(payments)
_REFUND_FOR_REQUEST = select(refunds).where(refunds.c.request_id == bindparam("request_id"))
_INSERT_REFUND = insert(refunds)
# Conditional on what was read: a lost update shows up as no row changed.
_SAVE_REFUNDED = (
    update(payments)
    .where(
        payments.c.payment_id == bindparam("where_payment_id"),
        payments.c.refunded_minor == bindparam("where_refunded_minor"),
    )
    .values(
        refunded_minor=bindparam("refunded_minor", type_=payments.c.refunded_minor.type),
        status=bindparam("status", type_=payments.c.status.type),
        update_time=bindparam("update_time", type_=payments.c.update_time.type),
    )
)


@functools.cache
def _payments_page(*, of_order: bool, after_seen: bool) -> Select[Any]:
    """`limit` payments, newest first: with `of_order`, only those of the order `order_id`;
    with `after_seen`, only those older than (`after_time`, `after_payment_id`)."""
    query = select(payments)
    if of_order:
        query = query.where(payments.c.order_id == bindparam("order_id"))
    if after_seen:
        after_time = bindparam("after_time", type_=payments.c.create_time.type)
        query = query.where(
            or_(
                payments.c.create_time < after_time,
                and_(
                    payments.c.create_time == after_time,
                    payments.c.payment_id < bindparam("after_payment_id"),
                ),
            )
        )
    newest_first = (payments.c.create_time.desc(), payments.c.payment_id.desc())
    return query.order_by(*newest_first).limit(bindparam("limit", type_=Integer))


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
        await self.session.execute(_INSERT_METHOD, values)

    async def get_method(self, payment_method_id: str) -> PaymentMethod | None:
        parameters = {"payment_method_id": payment_method_id}
        row = (await self.session.execute(_METHOD, parameters)).mappings().first()
        return _method(row) if row else None

    async def method_for_request(self, request_id: str) -> PaymentMethod | None:
        parameters = {"request_id": request_id}
        row = (await self.session.execute(_METHOD_FOR_REQUEST, parameters)).mappings().first()
        return _method(row) if row else None

    # payments

    async def lock_order(self, order_id: str) -> None:
        """Holds the order until commit, so concurrent charges of it queue up.

        Without it, replicas racing on one order would each call the processor
        and only the unique index would stop the second payment, after the
        card was charged twice. SQLite transactions are serialized already.
        """
        if self.is_postgres:
            await self.session.execute(_LOCK_ORDER, {"key": f"shop.payment.charge:{order_id}"})

    async def payment_for_order(self, order_id: str) -> Payment | None:
        return await self._one(_PAYMENT_FOR_ORDER, {"order_id": order_id})

    async def get_payment(self, payment_id: str, *, for_update: bool = False) -> Payment | None:
        statement = _PAYMENT_FOR_UPDATE if for_update else _PAYMENT
        return await self._one(statement, {"payment_id": payment_id})

    async def add_payment(self, payment: Payment) -> None:
        values = {
            "payment_id": payment.payment_id,
            "order_id": payment.order_id,
            "payment_method_id": payment.payment_method_id,
            "currency": payment.amount.currency,
            "amount_minor": payment.amount.amount_minor,
            "refunded_minor": payment.refunded.amount_minor,
            "status": payment.status.value,
            "failure_code": payment.failure_code,
            "card_last4": payment.card_last4,
            "create_time": payment.create_time,
            "update_time": payment.update_time,
        }
        await self.session.execute(_INSERT_PAYMENT, values)

    async def list_payments(
        self, order_id: str, after: PageKey | None, limit: int
    ) -> list[Payment]:
        """Newest first; `after` is the (create_time, payment_id) of the last one seen."""
        parameters: dict[str, Any] = {"limit": limit}
        if order_id:
            parameters["order_id"] = order_id
        if after is not None:
            parameters["after_time"], parameters["after_payment_id"] = after
        query = _payments_page(of_order=bool(order_id), after_seen=after is not None)
        rows = (await self.session.execute(query, parameters)).mappings().all()
        return [_payment(row) for row in rows]

    # refunds

    async def refund_for_request(self, request_id: str) -> Refund | None:
        parameters = {"request_id": request_id}
        row = (await self.session.execute(_REFUND_FOR_REQUEST, parameters)).mappings().first()
        return _refund(row) if row else None

    async def save_refund(self, before: Payment, after: Payment, refund: Refund) -> None:
        """Stores `refund` and writes `after`'s refunded total and status, unless the payment
        changed since `before` was read (then Aborted)."""
        values = {
            "refund_id": refund.refund_id,
            "payment_id": refund.payment_id,
            "request_id": refund.request_id,
            "currency": refund.amount.currency,
            "amount_minor": refund.amount.amount_minor,
            "requested_minor": None if refund.requested is None else refund.requested.amount_minor,
            "create_time": refund.create_time,
        }
        await self.session.execute(_INSERT_REFUND, values)
        parameters = {
            "where_payment_id": before.payment_id,
            "where_refunded_minor": before.refunded.amount_minor,
            "refunded_minor": after.refunded.amount_minor,
            "status": after.status.value,
            "update_time": after.update_time,
        }
        result = await self.session.execute(_SAVE_REFUNDED, parameters)
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise Aborted("the payment changed while it was being refunded; retry")

    async def _one(self, query: Select[Any], parameters: dict[str, Any]) -> Payment | None:
        row = (await self.session.execute(query, parameters)).mappings().first()
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
