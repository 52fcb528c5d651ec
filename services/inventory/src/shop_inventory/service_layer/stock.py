"""Use cases of stock levels: reading, importing and watching."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from shop_grpc.idempotency import check_replay
from shop_inventory.domain.errors import ImportedProductNotFound, ProductNotFound
from shop_inventory.domain.model import StockLevel
from shop_inventory.service_layer.unit_of_work import UnitOfWorkFactory


@dataclass(frozen=True)
class ImportLine:
    product_id: str
    quantity: int


@dataclass(frozen=True)
class ImportResult:
    lines_applied: int
    levels: list[StockLevel]


async def get_stock(uow: UnitOfWorkFactory, product_id: str) -> StockLevel:
    return (await get_levels(uow, [product_id]))[0]


async def get_levels(uow: UnitOfWorkFactory, product_ids: Sequence[str]) -> list[StockLevel]:
    """The levels in the order asked for; NOT_FOUND names the first unknown product."""
    async with uow(readonly=True) as tx:
        levels = await tx.stock.get_many(product_ids)
    for product_id in product_ids:
        if product_id not in levels:
            raise ProductNotFound(product_id)
    return [levels[product_id] for product_id in product_ids]


async def import_stock(
    uow: UnitOfWorkFactory,
    request_id: str,
    fingerprint: str,
    lines: Sequence[ImportLine],
    now: datetime,
) -> ImportResult:
    """Adds every line in one transaction, or nothing; a replayed request_id adds nothing.

    Raises RequestIdReused if the request_id was applied to a stream of other lines
    (`fingerprint`: shop_grpc.idempotency's of the whole stream).
    """
    named = list(dict.fromkeys(line.product_id for line in lines))
    async with uow() as tx:
        if request_id and not await tx.imports.add(request_id, fingerprint, len(lines), now):
            check_replay(request_id, await tx.imports.fingerprint_of(request_id), fingerprint)
            levels = await tx.stock.get_many(named)
            return ImportResult(0, [levels[pid] for pid in named if pid in levels])
        levels = await tx.stock.lock(named)
        for index, line in enumerate(lines):
            if line.product_id not in levels:
                raise ImportedProductNotFound(line.product_id, index)
            levels[line.product_id].receive(line.quantity, now)
        await tx.stock.save(levels.values())
        await tx.commit()
    return ImportResult(len(lines), [levels[pid] for pid in named])
