"""Use cases of reservations: holding stock for an order, selling it, returning it.

Every transaction that touches a reservation locks it first and its stock rows
second (in product_id order), the same order everywhere, so concurrent calls
and replicas queue on row locks instead of deadlocking.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from shop_grpc.errors import Aborted
from shop_inventory.domain import model
from shop_inventory.domain.errors import ReservationExpired, ReservationNotFound
from shop_inventory.domain.model import Reservation, ReservationState, StockLevel
from shop_inventory.service_layer import metrics
from shop_inventory.service_layer.unit_of_work import UnitOfWork, UnitOfWorkFactory

SWEEP_BATCH = 100


async def reserve_items(
    uow: UnitOfWorkFactory,
    order_id: str,
    requested: Sequence[tuple[str, int]],
    now: datetime,
    ttl: timedelta,
) -> Reservation:
    """Holds every line for the order, or nothing; a repeat returns the first reservation.

    Raises ReservationClosed once the order's reservation was released or expired, or
    the order was released before it reserved: see ``model`` on tombstones."""
    async with uow() as tx:
        existing = await tx.reservations.get(order_id)
        if existing is None:
            product_ids = [product_id for product_id, _ in requested]
            products = await tx.products.get_many(product_ids)
            levels = await tx.stock.lock(product_ids)
            reservation = model.reserve(order_id, requested, products, levels, now, ttl)
            if await tx.reservations.add(reservation):
                await tx.stock.save(levels[pid] for pid in product_ids)
                await tx.commit()
                metrics.reservations_entered(ReservationState.PENDING)
                return reservation
            # A concurrent call for the same order committed first; its row is visible now.
            existing = await tx.reservations.get(order_id)
    if existing is None:
        raise Aborted(f"reservation for order {order_id!r} changed concurrently; retry")
    existing.ensure_open()
    existing.ensure_same_lines(requested)
    return existing


async def commit_reservation(uow: UnitOfWorkFactory, order_id: str, now: datetime) -> Reservation:
    """Sells the held stock; a reservation found overdue expires on the spot instead."""
    async with uow() as tx:
        reservation, levels = await _lock(tx, order_id)
        if reservation.is_overdue(now):
            await _expire(tx, reservation, levels, now)
            await tx.commit()
            metrics.reservations_entered(ReservationState.EXPIRED)
            raise ReservationExpired(order_id)
        if reservation.commit(levels, now):
            await _save(tx, reservation, levels, now)
            await tx.commit()
            metrics.reservations_entered(ReservationState.COMMITTED)
    return reservation


async def release_reservation(uow: UnitOfWorkFactory, order_id: str, now: datetime) -> Reservation:
    """Puts held (or already sold) stock back on the shelf.

    An order without a reservation gets a tombstone, so that a reserve for it still on its
    way (from a saga replica that lost its lease) is refused instead of holding stock that
    nothing will release."""
    async with uow() as tx:
        if await tx.reservations.get(order_id, lock=True) is None:
            closed = model.tombstone(order_id, now)
            if await tx.reservations.add(closed):
                await tx.commit()
                return closed
            # Else a reserve for the order committed first: release what it holds.
        reservation, levels = await _lock(tx, order_id)
        if reservation.is_overdue(now):
            await _expire(tx, reservation, levels, now)
            await tx.commit()
            metrics.reservations_entered(ReservationState.EXPIRED)
        elif reservation.release(levels, now):
            await _save(tx, reservation, levels, now)
            await tx.commit()
            metrics.reservations_entered(ReservationState.RELEASED)
    return reservation


async def get_reservation(uow: UnitOfWorkFactory, order_id: str) -> Reservation:
    async with uow(readonly=True) as tx:
        reservation = await tx.reservations.get(order_id)
    if reservation is None:
        raise ReservationNotFound(order_id)
    return reservation


async def expire_overdue(uow: UnitOfWorkFactory, now: datetime, limit: int = SWEEP_BATCH) -> int:
    """Expires up to `limit` overdue reservations, returning their stock; how many."""
    async with uow() as tx:
        due = await tx.reservations.lock_overdue(now, limit)
        if not due:
            return 0
        # One sorted lock over all their products, as every other writer does.
        levels = await tx.stock.lock(pid for reservation in due for pid in reservation.product_ids)
        for reservation in due:
            reservation.expire(levels, now)
            await tx.reservations.save_state(reservation, now)
        await tx.stock.save(levels.values())
        await tx.commit()
    metrics.reservations_entered(ReservationState.EXPIRED, len(due))
    return len(due)


async def _lock(tx: UnitOfWork, order_id: str) -> tuple[Reservation, dict[str, StockLevel]]:
    reservation = await tx.reservations.get(order_id, lock=True)
    if reservation is None:
        raise ReservationNotFound(order_id)
    return reservation, await tx.stock.lock(reservation.product_ids)


async def _expire(
    tx: UnitOfWork, reservation: Reservation, levels: dict[str, StockLevel], now: datetime
) -> None:
    reservation.expire(levels, now)
    await _save(tx, reservation, levels, now)


async def _save(
    tx: UnitOfWork, reservation: Reservation, levels: dict[str, StockLevel], now: datetime
) -> None:
    await tx.reservations.save_state(reservation, now)
    await tx.stock.save(levels.values())
