"""Orders on SQLAlchemy Core, with the leases that let several replicas share the saga work.

The statements of the order path (place, save each step, read) are built once, with bound
parameters: SQLAlchemy then finds each compiled statement in its cache from a key computed
once, instead of building the statement and its key again for every call, which cost more
than running it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, case, delete, func, insert, null, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.sql.dml import Update

from shop_grpc.money import Money
from shop_grpc.storage import Session
from shop_order.adapters.orm import order_lines, orders
from shop_order.domain.errors import LeaseLost
from shop_order.domain.model import Lease, Order, OrderLine, Status, Step
from shop_order.service_layer.unit_of_work import Backlog


def _bound(*columns: str) -> dict[str, Any]:
    """SET clauses that take each column's value from a parameter of the same name."""
    return {name: bindparam(name, type_=orders.c[name].type) for name in columns}


def _leased(values: dict[str, Any]) -> Update:
    """An UPDATE of the order `where_order_id` that writes only while `where_lease_token`
    holds it, returning whether a cancel was asked for meanwhile."""
    return (
        update(orders)
        .where(
            orders.c.order_id == bindparam("where_order_id"),
            orders.c.lease_token == bindparam("where_lease_token"),
        )
        .values(values)
        .returning(orders.c.cancel_requested)
    )


# What a saga step writes: the order's progress, and the lease renewed.
_PROGRESS = (
    "status",
    "step",
    "undo_outcome",
    "failure_reason",
    "payment_id",
    "currency",
    "total_minor",
    "charge_attempted",
    "attempts",
    "update_time",
)
_KEEP_LEASE = orders.c.cancel_requested.is_(True)
_SAVE = _leased(_bound(*_PROGRESS, "lease_expires_at"))
# A final order's lease is given up in the same write, unless a cancel request still needs it.
_SAVE_FINAL = _leased(
    {
        **_bound(*_PROGRESS),
        "lease_owner": case((_KEEP_LEASE, orders.c.lease_owner), else_=null()),
        "lease_token": case((_KEEP_LEASE, orders.c.lease_token), else_=null()),
        "lease_expires_at": case((_KEEP_LEASE, orders.c.lease_expires_at), else_=null()),
    }
)
_RENEW = _leased(_bound("lease_expires_at"))
_INSERT_ORDER = insert(orders)
_INSERT_LINES = insert(order_lines)
_DELETE_LINES = delete(order_lines).where(order_lines.c.order_id == bindparam("where_order_id"))
_BY_ID = select(orders).where(orders.c.order_id == bindparam("order_id"))
_BY_ID_FOR_UPDATE = _BY_ID.with_for_update()
_BY_REQUEST_ID = select(orders).where(orders.c.request_id == bindparam("request_id"))
_LINES_OF = (
    select(order_lines)
    .where(order_lines.c.order_id.in_(bindparam("order_ids", expanding=True)))
    .order_by(order_lines.c.order_id, order_lines.c.position)
)


class OrderRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    async def add(self, order: Order, lease: Lease, now: datetime) -> None:
        values = _order_values(order)
        values.update(
            lease_owner=lease.owner,
            lease_token=lease.token,
            lease_expires_at=lease.until(now),
            create_time=now,
            update_time=now,
        )
        await self.session.execute(_INSERT_ORDER, values)
        await self._insert_lines(order)
        order.create_time = order.update_time = now

    async def get(self, order_id: str, *, for_update: bool = False) -> Order | None:
        query = _BY_ID_FOR_UPDATE if for_update else _BY_ID
        row = (await self.session.execute(query, {"order_id": order_id})).mappings().first()
        return None if row is None else (await self._load([row]))[0]

    async def get_by_request_id(self, request_id: str) -> Order | None:
        result = await self.session.execute(_BY_REQUEST_ID, {"request_id": request_id})
        row = result.mappings().first()
        return None if row is None else (await self._load([row]))[0]

    async def list_for_user(
        self, user_id: str, after: tuple[datetime, str] | None, limit: int
    ) -> list[Order]:
        query = select(orders).where(orders.c.user_id == user_id)
        if after is not None:
            created, order_id = after
            query = query.where(
                or_(
                    orders.c.create_time < created,
                    and_(orders.c.create_time == created, orders.c.order_id < order_id),
                )
            )
        query = query.order_by(orders.c.create_time.desc(), orders.c.order_id.desc()).limit(limit)
        rows = (await self.session.execute(query)).mappings().all()
        return await self._load(rows)

    async def save(self, order: Order, lease: Lease, now: datetime, *, lines: bool) -> None:
        """Writes the saga's progress (and, with `lines`, its lines) if `lease` still holds.

        Only the columns a step changes are written (the parameters of an UPDATE that name
        other columns would be written too): never `cancel_requested`, which another call
        may have set meanwhile.

        Picks up into `order` a cancel request made meanwhile by another call. A final
        order's lease is given up in the same write, unless a cancel request still needs it.
        """
        row = _order_values(order)
        values = {name: row[name] for name in _PROGRESS if name != "update_time"}
        values["update_time"] = now
        if order.is_final:
            statement = _SAVE_FINAL
        else:
            statement = _SAVE
            values["lease_expires_at"] = lease.until(now)
        order.cancel_requested = await self._update_leased(statement, order.order_id, lease, values)
        order.update_time = now
        if lines:
            await self.session.execute(_DELETE_LINES, {"where_order_id": order.order_id})
            await self._insert_lines(order)

    async def renew(self, order_id: str, lease: Lease, now: datetime) -> bool:
        """Extends `lease` on the order from `now`; LeaseLost if another replica holds it.
        Returns whether a cancel was asked for meanwhile."""
        values = {"lease_expires_at": lease.until(now)}
        return await self._update_leased(_RENEW, order_id, lease, values)

    async def _update_leased(
        self, statement: Update, order_id: str, lease: Lease, values: dict[str, Any]
    ) -> bool:
        """Runs `statement` (made by `_leased`) with `values` if `lease` still holds the
        order, else LeaseLost; returns whether a cancel was asked for meanwhile."""
        values.update(where_order_id=order_id, where_lease_token=lease.token)
        cancel_requested = (await self.session.execute(statement, values)).scalar_one_or_none()
        if cancel_requested is None:
            raise LeaseLost(order_id)
        return bool(cancel_requested)

    async def save_unleased(self, order: Order, now: datetime) -> None:
        """Writes a change made outside the saga (a cancel request). An order nobody holds
        becomes due at once rather than after its backoff, so the change is acted on now."""
        values = {
            "cancel_requested": order.cancel_requested,
            "update_time": now,
            "lease_expires_at": case(
                (orders.c.lease_owner.is_(None), null()), else_=orders.c.lease_expires_at
            ),
        }
        await self.session.execute(
            update(orders).where(orders.c.order_id == order.order_id).values(**values)
        )
        order.update_time = now

    async def reopen(self, order: Order, lease: Lease, now: datetime) -> None:
        """Starts undoing a finished order under `lease` (a cancel)."""
        values = _order_values(order)
        values.update(
            update_time=now,
            lease_owner=lease.owner,
            lease_token=lease.token,
            lease_expires_at=lease.until(now),
        )
        await self.session.execute(
            update(orders).where(orders.c.order_id == order.order_id).values(**values)
        )
        order.update_time = now

    async def claim(self, order_id: str, lease: Lease, now: datetime) -> bool:
        """Takes the lease on one unfinished order if nobody live holds it."""
        result = await self.session.execute(
            update(orders)
            .where(orders.c.order_id == order_id, _unfinished(), _claimable(lease, now))
            .values(
                lease_owner=lease.owner, lease_token=lease.token, lease_expires_at=lease.until(now)
            )
        )
        return result.rowcount == 1  # type: ignore[attr-defined,no-any-return]

    async def claim_unfinished(self, lease: Lease, now: datetime, limit: int) -> list[str]:
        """Takes the leases of up to `limit` unfinished orders nobody live is driving.

        The ones due longest go first: free ones (due now), then by when their lease lapsed
        or their backoff ran out. So an order that keeps failing, and is retried later each
        time, never holds back one that is due. SKIP LOCKED lets replicas scan at the same
        time without waiting on each other.
        """
        query = (
            select(orders.c.order_id)
            .where(_unfinished(), _claimable(lease, now))
            .order_by(orders.c.lease_expires_at.asc().nulls_first(), orders.c.order_id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        ids = list((await self.session.execute(query)).scalars())
        return [order_id for order_id in ids if await self.claim(order_id, lease, now)]

    async def release(self, order: Order, lease: Lease, retry_at: datetime | None) -> None:
        """Gives the lease up, keeping the order's count of failed tries; with `retry_at`,
        nobody picks the order up before then, unless a cancel was asked for meanwhile: that
        order is due at once (a cancel that landed while the drive was handing the order back
        must not wait out its backoff)."""
        await self.session.execute(
            update(orders)
            .where(orders.c.order_id == order.order_id, orders.c.lease_token == lease.token)
            .values(
                lease_owner=None,
                lease_token=None,
                lease_expires_at=case(
                    (orders.c.cancel_requested.is_(True), null()),
                    else_=bindparam("retry_at", retry_at, type_=orders.c.lease_expires_at.type),
                ),
                attempts=order.attempts,
            )
        )

    async def backlog(self) -> Backlog:
        query = select(
            func.count().label("unfinished"), func.min(orders.c.create_time).label("oldest")
        ).where(_unfinished())
        row = (await self.session.execute(query)).mappings().one()
        return Backlog(unfinished=int(row["unfinished"]), oldest_create_time=row["oldest"])

    async def _insert_lines(self, order: Order) -> None:
        await self.session.execute(
            _INSERT_LINES,
            [
                {
                    "order_id": order.order_id,
                    "position": position,
                    "product_id": line.product_id,
                    "quantity": line.quantity,
                    "unit_price_minor": None
                    if line.unit_price is None
                    else line.unit_price.amount_minor,
                }
                for position, line in enumerate(order.lines)
            ],
        )

    async def _load(self, rows: Sequence[RowMapping]) -> list[Order]:
        if not rows:
            return []
        ids = [row["order_id"] for row in rows]
        line_rows = (await self.session.execute(_LINES_OF, {"order_ids": ids})).mappings()
        lines: dict[str, list[RowMapping]] = {}
        for line in line_rows:
            lines.setdefault(line["order_id"], []).append(line)
        return [_order(row, lines.get(row["order_id"], [])) for row in rows]


def _unfinished() -> Any:
    """Orders with saga work left: not done, or confirmed with a cancel waiting."""
    return or_(
        orders.c.step != Step.DONE,
        and_(orders.c.cancel_requested.is_(True), orders.c.status == Status.CONFIRMED),
    )


def _claimable(lease: Lease, now: datetime) -> Any:
    # Free, expired, or held by an earlier boot of this same replica (which crashed).
    return or_(
        orders.c.lease_expires_at.is_(None),
        orders.c.lease_expires_at < now,
        and_(orders.c.lease_owner == lease.owner, orders.c.lease_token != lease.token),
    )


def _order_values(order: Order) -> dict[str, Any]:
    return {
        "order_id": order.order_id,
        "user_id": order.user_id,
        "request_id": order.request_id,
        "request_fingerprint": order.request_fingerprint,
        "status": order.status.value,
        "step": order.step.value,
        "undo_outcome": None if order.undo_outcome is None else order.undo_outcome.value,
        "failure_reason": order.failure_reason,
        "payment_method_id": order.payment_method_id,
        "payment_id": order.payment_id,
        "currency": None if order.total is None else order.total.currency,
        "total_minor": None if order.total is None else order.total.amount_minor,
        "cancel_requested": order.cancel_requested,
        "charge_attempted": order.charge_attempted,
        "attempts": order.attempts,
    }


def _order(row: RowMapping, lines: list[RowMapping]) -> Order:
    currency = row["currency"]
    return Order(
        order_id=row["order_id"],
        user_id=row["user_id"],
        request_id=row["request_id"],
        request_fingerprint=row["request_fingerprint"],
        lines=[
            OrderLine(
                product_id=line["product_id"],
                quantity=line["quantity"],
                unit_price=None
                if line["unit_price_minor"] is None or currency is None
                else Money(currency, line["unit_price_minor"]),
            )
            for line in lines
        ],
        payment_method_id=row["payment_method_id"],
        status=Status(row["status"]),
        step=Step(row["step"]),
        undo_outcome=None if row["undo_outcome"] is None else Status(row["undo_outcome"]),
        failure_reason=row["failure_reason"],
        payment_id=row["payment_id"],
        total=None if currency is None else Money(currency, row["total_minor"]),
        cancel_requested=row["cancel_requested"],
        charge_attempted=row["charge_attempted"],
        attempts=row["attempts"],
        create_time=row["create_time"],
        update_time=row["update_time"],
    )
