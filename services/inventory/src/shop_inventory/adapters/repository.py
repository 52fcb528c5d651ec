"""Repositories over the inventory's tables.

Inserts that may clash with a concurrent insert of the same key report the clash
as ``False`` (``storage.insert_once``), leaving the transaction usable to read
the winner's row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, insert, select, update

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
        return await insert_once(self.session, insert(products).values(row))

    async def get(self, product_id: str) -> Product | None:
        found = await self.get_many([product_id])
        return found.get(product_id)

    async def get_many(self, product_ids: Iterable[str]) -> dict[str, Product]:
        query = select(products).where(products.c.product_id.in_(list(product_ids)))
        rows = (await self.session.execute(query)).all()
        return {row.product_id: _product(row) for row in rows}

    async def request_id_of(self, product_id: str) -> str | None:
        query = select(products.c.request_id).where(products.c.product_id == product_id)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def created_by(self, request_id: str) -> Product | None:
        """The product a create with `request_id` made, if any."""
        query = select(products).where(products.c.request_id == request_id).limit(1)
        row = (await self.session.execute(query)).first()
        return None if row is None else _product(row)

    async def list_after(self, after: str | None, limit: int) -> list[Product]:
        query = select(products).order_by(products.c.product_id).limit(limit)
        if after is not None:
            query = query.where(products.c.product_id > after)
        return [_product(row) for row in (await self.session.execute(query)).all()]


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
        await self.session.execute(insert(stock_levels).values(_level_row(level)))
        self.changed = True

    async def get_many(self, product_ids: Iterable[str]) -> dict[str, StockLevel]:
        return await self._fetch(self._query(product_ids))

    async def lock(self, product_ids: Iterable[str]) -> dict[str, StockLevel]:
        """Reads and row-locks the levels, always in product_id order so that two
        transactions locking overlapping products cannot deadlock."""
        return await self._fetch(self._query(product_ids).with_for_update())

    async def save(self, levels: Iterable[StockLevel]) -> None:
        for level in levels:
            row = _level_row(level)
            await self.session.execute(
                update(stock_levels)
                .where(stock_levels.c.product_id == row.pop("product_id"))
                .values(row)
            )
            self.changed = True

    def _query(self, product_ids: Iterable[str]) -> Select[Any]:
        return (
            select(stock_levels)
            .where(stock_levels.c.product_id.in_(sorted(set(product_ids))))
            .order_by(stock_levels.c.product_id)
        )

    async def _fetch(self, query: Select[Any]) -> dict[str, StockLevel]:
        rows = (await self.session.execute(query)).all()
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


def _level_row(level: StockLevel) -> dict[str, Any]:
    return {
        "product_id": level.product_id,
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
        if not await insert_once(self.session, insert(reservations).values(row)):
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
            await self.session.execute(insert(reservation_lines), lines)
        return True

    async def get(self, order_id: str, *, lock: bool = False) -> Reservation | None:
        query = select(reservations).where(reservations.c.order_id == order_id)
        if lock:
            query = query.with_for_update()
        found = await self._fetch(query)
        return found[0] if found else None

    async def lock_overdue(self, now: datetime, limit: int) -> list[Reservation]:
        """Locks up to `limit` pending reservations past their expiry, skipping rows
        another replica is already working on."""
        query = (
            select(reservations)
            .where(
                reservations.c.state == ReservationState.PENDING.value,
                reservations.c.expire_time <= now,
            )
            .order_by(reservations.c.expire_time, reservations.c.order_id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return await self._fetch(query)

    async def save_state(self, reservation: Reservation, now: datetime) -> None:
        await self.session.execute(
            update(reservations)
            .where(reservations.c.order_id == reservation.order_id)
            .values(state=reservation.state.value, update_time=now)
        )

    async def _fetch(self, query: Select[Any]) -> list[Reservation]:
        heads = (await self.session.execute(query)).all()
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
        query = (
            select(reservation_lines)
            .where(reservation_lines.c.order_id.in_(order_ids))
            .order_by(reservation_lines.c.order_id, reservation_lines.c.position)
        )
        lines: dict[str, list[ReservedLine]] = {}
        for row in (await self.session.execute(query)).all():
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
        return await insert_once(self.session, insert(import_batches).values(row))

    async def fingerprint_of(self, request_id: str) -> str | None:
        query = select(import_batches.c.request_fingerprint).where(
            import_batches.c.request_id == request_id
        )
        return (await self.session.execute(query)).scalar_one_or_none()
