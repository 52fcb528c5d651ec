"""Composition root: builds storage, the servicer and the background job, then serves."""

from __future__ import annotations

from datetime import timedelta
from functools import partial

from shop_grpc import logs, telemetry
from shop_grpc.changes import ChangeSignal
from shop_grpc.pagination import PageTokens
from shop_grpc.server import App, run
from shop_grpc.storage import Database
from shop_inventory.adapters.orm import metadata
from shop_inventory.adapters.unit_of_work import SqlUnitOfWork
from shop_inventory.config import Settings
from shop_inventory.entrypoints.grpc import registration
from shop_inventory.entrypoints.sweeper import expiry_sweeper


async def serve(settings: Settings) -> None:
    server_settings = settings.server
    logs.configure(server_settings.log, service="inventory", instance=server_settings.instance_id)
    telemetry.configure(server_settings)
    await run(server_settings, partial(start, settings))


async def start(settings: Settings) -> App:
    """Waits for the database (the probe port says NOT_SERVING meanwhile), then builds."""
    db = Database(settings.server.database_url)
    await db.migrate_when_reachable(metadata)
    changes = ChangeSignal()
    uow = partial(SqlUnitOfWork, db, changes)
    ttl = timedelta(seconds=settings.reservation_ttl_seconds)
    return App(
        [registration(uow, changes, ttl, await PageTokens.load(db))],
        background=[expiry_sweeper(uow, settings.sweep_seconds)],
        cleanup=[db.dispose],
        stopping=[changes.close],
    )
