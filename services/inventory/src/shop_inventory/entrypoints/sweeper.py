"""The background job that expires overdue reservations and returns their stock."""

from __future__ import annotations

import asyncio

import structlog

from shop_grpc.server import Background
from shop_grpc.storage import utcnow
from shop_inventory.service_layer import reservations
from shop_inventory.service_layer.reservations import SWEEP_BATCH
from shop_inventory.service_layer.unit_of_work import UnitOfWorkFactory

log = structlog.get_logger(__name__)


async def sweep_once(uow: UnitOfWorkFactory) -> int:
    """Expires every reservation overdue now, batch by batch; how many."""
    total = 0
    while True:
        expired = await reservations.expire_overdue(uow, utcnow(), SWEEP_BATCH)
        total += expired
        if expired < SWEEP_BATCH:
            return total


def expiry_sweeper(uow: UnitOfWorkFactory, interval_seconds: float) -> Background:
    """A job for ``shop_grpc.server.run``: sweeps every `interval_seconds` until cancelled."""

    async def sweep_reservations() -> None:
        while True:
            try:
                expired = await sweep_once(uow)
            except Exception:
                # A failed pass (database briefly down...) must not end the job.
                log.exception("reservation sweep failed")
            else:
                if expired:
                    log.info("reservations expired", count=expired)
            await asyncio.sleep(interval_seconds)

    return sweep_reservations
