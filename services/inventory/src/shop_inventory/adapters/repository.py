"""Repositories over the inventory's tables.

Inserts that may clash with a concurrent insert of the same key report the clash
as ``False`` (``storage.insert_once``), leaving the transaction usable to read
the winner's row.

Every statement is built once, with bound parameters, so that SQLAlchemy finds it compiled
in its cache from a key computed once instead of building it and its key again on every
call, which cost more than running it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import BindParameter, Integer, Row, Select, Table, bindparam, insert, select, update

from shop_grpc.money import Money
from shop_grpc.storage import Session, insert_once
from shop_inventory.adapters.orm import (
    import_batches,
    products,
    reservation_lines,
    reservations,
    stock_levels,
)
from shop_inventory.domain.model import (
    Product,
    Reservation,
    ReservationState,
    ReservedLine,
    StockLevel,
)


def _bound(table: Table, *columns: str) -> dict[str, BindParameter[Any]]:
    """SET clauses that take each column's value from a parameter of the same name."""
    return {name: bindparam(name, type_=table.c[name].type) for name in columns}


_PRODUCTS = select(products).where(
    products.c.product_id.in_(bindparam("product_ids", expanding=True))
)
_REQUEST_ID_OF = select(products.c.request_id).where(
    products.c.product_id == bindparam("product_id")
)
_CREATED_BY = select(products).where(products.c.request_id == bindparam("request_id")).limit(1)
_FIRST_PRODUCTS = (
    select(products).order_by(products.c.product_id).limit(bindparam("limit", type_=Integer))
)
_PRODUCTS_AFTER = _FIRST_PRODUCTS.where(products.c.product_id > bindparam("after"))

_INSERT_LEVEL = insert(stock_levels)
# In product_id order, the order in which every writer locks them.
_LEVELS = (
    select(stock_levels)
    .where(stock_levels.c.product_id.in_(bindparam("product_ids", expanding=True)))
    .order_by(stock_levels.c.product_id)
)
_LEVELS_FOR_UPDATE = _LEVELS.with_for_update()
_SAVE_LEVEL = (
    update(stock_levels)
    .where(stock_levels.c.product_id == bindparam("where_product_id"))
    .values(_bound(stock_levels, "available", "reserved", "sold", "update_time"))
)

_INSERT_RESERVATION_LINES = insert(reservation_lines)
_RESERVATION = select(reservations).where(reservations.c.order_id == bindparam("order_id"))
_RESERVATION_FOR_UPDATE = _RESERVATION.with_for_update()
_OVERDUE = (
    select(reservations)
    .where(
        reservations.c.state == ReservationState.PENDING.value,
        reservations.c.expire_time <= bindparam("now", type_=reservations.c.expire_time.type),
    )
    .order_by(reservations.c.expire_time, reservations.c.order_id)
    .limit(bindparam("limit", type_=Integer))
    .with_for_update(skip_locked=True)
)
_SAVE_STATE = (
    update(reservations)
    .where(reservations.c.order_id == bindparam("where_order_id"))
    .values(_bound(reservations, "state", "update_time"))
)
_RESERVATION_LINES = (
    select(reservation_lines)
    .where(reservation_lines.c.order_id.in_(bindparam("order_ids", expanding=True)))
    .order_by(reservation_lines.c.order_id, reservation_lines.c.position)
)

_FINGERPRINT_OF = select(import_batches.c.request_fingerprint).where(
    import_batches.c.request_id == bindparam("request_id")
)


class ProductRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    async def add(self, product: Product, request_id: str) -> bool:
        """Inserts `product`; False if its id is taken."""
        row = {
            "product_id": product.product_id,
            "title": product.title,
            "description": product.description,
            "price_minor": product.price.amount_minor,
            "currency": product.price.currency,
            "create_time": product.create_time,
            "request_id": request_id,
        }
        return await insert_once(self.session, products, row)

    async def get(self, product_id: str) -> Product | None:
        found = await self.get_many([product_id])
        return found.get(product_id)

    async def get_many(self, product_ids: Iterable[str]) -> dict[str, Product]:
        result = await self.session.execute(_PRODUCTS, {"product_ids": list(product_ids)})
        return {row.product_id: _product(row) for row in result.all()}

    async def request_id_of(self, product_id: str) -> str | None:
        result = await self.session.execute(_REQUEST_ID_OF, {"product_id": product_id})
        return result.scalar_one_or_none()

    async def created_by(self, request_id: str) -> Product | None:
        """The product a create with `request_id` made, if any."""
        row = (await self.session.execute(_CREATED_BY, {"request_id": request_id})).first()
        return None if row is None else _product(row)

    async def list_after(self, after: str | None, limit: int) -> list[Product]:
        if after is None:
            result = await self.session.execute(_FIRST_PRODUCTS, {"limit": limit})
        else:
            result = await self.session.execute(_PRODUCTS_AFTER, {"after": after, "limit": limit})
        return [_product(row) for row in result.all()]


def _product(row: Row[Any]) -> Product:
    return Product(
        product_id=row.product_id,
        title=row.title,
        description=row.description,
        price=Money(row.currency, row.price_minor),
        create_time=row.create_time,
    )


class StockRepository:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.changed = False
        """Whether this transaction wrote stock, so watchers get woken after commit."""

    async def add(self, level: StockLevel) -> None:
        row = {"product_id": level.product_id, **_counts(level)}
        await self.session.execute(_INSERT_LEVEL, row)
        self.changed = True

    async def get_many(self, product_ids: Iterable[str]) -> dict[str, StockLevel]:
        return await self._fetch(_LEVELS, product_ids)

    async def lock(self, product_ids: Iterable[str]) -> dict[str, StockLevel]:
        """Reads and row-locks the levels, always in product_id order so that two
        transactions locking overlapping products cannot deadlock."""
        return await self._fetch(_LEVELS_FOR_UPDATE, product_ids)

    async def save(self, levels: Iterable[StockLevel]) -> None:
        """Writes each level's counts, one row after another in the order given."""
        rows = [{"where_product_id": level.product_id, **_counts(level)} for level in levels]
        if rows:
            await self.session.execute(_SAVE_LEVEL, rows)
            self.changed = True

    async def _fetch(
        self, statement: Select[Any], product_ids: Iterable[str]
    ) -> dict[str, StockLevel]:
        parameters = {"product_ids": sorted(set(product_ids))}
        rows = (await self.session.execute(statement, parameters)).all()
        return {
            row.product_id: StockLevel(
                product_id=row.product_id,
                update_time=row.update_time,
                available=row.available,
                reserved=row.reserved,
                sold=row.sold,
            )
            for row in rows
        }


def _counts(level: StockLevel) -> dict[str, Any]:
    """The columns of a stock level that change: all but its product_id."""
    return {
        "available": level.available,
        "reserved": level.reserved,
        "sold": level.sold,
        "update_time": level.update_time,
    }


class ReservationRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    async def add(self, reservation: Reservation) -> bool:
        """Inserts `reservation`; False if the order already has one."""
        total = reservation.total
        row = {
            "order_id": reservation.order_id,
            "state": reservation.state.value,
            # A tombstone holds nothing, in no currency.
            "total_minor": 0 if total is None else total.amount_minor,
            "currency": "" if total is None else total.currency,
            "expire_time": reservation.expire_time,
            "create_time": reservation.create_time,
            "update_time": reservation.create_time,
        }
        if not await insert_once(self.session, reservations, row):
            return False
        lines = [
            {
                "order_id": reservation.order_id,
                "position": position,
                "product_id": line.product_id,
                "quantity": line.quantity,
                "unit_price_minor": line.unit_price.amount_minor,
                "currency": line.unit_price.currency,
            }
            for position, line in enumerate(reservation.lines)
        ]
        if lines:
            await self.session.execute(_INSERT_RESERVATION_LINES, lines)
        return True

    async def get(self, order_id: str, *, lock: bool = False) -> Reservation | None:
        statement = _RESERVATION_FOR_UPDATE if lock else _RESERVATION
        found = await self._fetch(statement, {"order_id": order_id})
        return found[0] if found else None

    async def lock_overdue(self, now: datetime, limit: int) -> list[Reservation]:
        """Locks up to `limit` pending reservations past their expiry, skipping rows
        another replica is already working on."""
        return await self._fetch(_OVERDUE, {"now": now, "limit": limit})

    async def save_state(self, reservation: Reservation, now: datetime) -> None:
        parameters = {
            "where_order_id": reservation.order_id,
            "state": reservation.state.value,
            "update_time": now,
        }
        await self.session.execute(_SAVE_STATE, parameters)

    async def _fetch(self, statement: Select[Any], parameters: dict[str, Any]) -> list[Reservation]:
        heads = (await self.session.execute(statement, parameters)).all()
        if not heads:
            return []
        lines = await self._lines([head.order_id for head in heads])
        return [
            Reservation(
                order_id=head.order_id,
                lines=tuple(lines.get(head.order_id, [])),
                state=ReservationState(head.state),
                expire_time=head.expire_time,
                create_time=head.create_time,
            )
            for head in heads
        ]

    async def _lines(self, order_ids: Sequence[str]) -> dict[str, list[ReservedLine]]:
        result = await self.session.execute(_RESERVATION_LINES, {"order_ids": order_ids})
        lines: dict[str, list[ReservedLine]] = {}
        for row in result.all():
            line = ReservedLine(
                row.product_id, row.quantity, Money(row.currency, row.unit_price_minor)
            )
            lines.setdefault(row.order_id, []).append(line)
        return lines


class ImportBatchRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    async def add(
        self, request_id: str, fingerprint: str, lines_applied: int, now: datetime
    ) -> bool:
        """Records an applied import; False if `request_id` was applied before."""
        row = {
            "request_id": request_id,
            "request_fingerprint": fingerprint,
            "lines_applied": lines_applied,
            "create_time": now,
        }
        return await insert_once(self.session, import_batches, row)

    async def fingerprint_of(self, request_id: str) -> str | None:
        result = await self.session.execute(_FINGERPRINT_OF, {"request_id": request_id})
        return result.scalar_one_or_none()
