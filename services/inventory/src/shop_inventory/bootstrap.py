"""Composition root: builds storage, the servicer and the background job, then serves."""

from __future__ import annotations

from datetime import timedelta

from shop_grpc import logs, telemetry
from shop_grpc.changes import ChangeSignal
from shop_grpc.pagination import PageTokens
from shop_grpc.server import GrpcServer, run
from shop_grpc.storage import Database
from shop_inventory.adapters.orm import metadata
from shop_inventory.config import Settings
from shop_inventory.entrypoints.grpc import registration
from shop_inventory.entrypoints.sweeper import expiry_sweeper
from shop_inventory.service_layer.unit_of_work import SqlUnitOfWork


async def serve(settings: Settings) -> None:
    server_settings = settings.server
    logs.configure(server_settings.log, service="inventory", instance=server_settings.instance_id)
    telemetry.configure(server_settings)
    db = Database(server_settings.database_url)
    await db.migrate(metadata)
    changes = ChangeSignal()

    def uow() -> SqlUnitOfWork:
        return SqlUnitOfWork(db, changes)

    ttl = timedelta(seconds=settings.reservation_ttl_seconds)
    server = GrpcServer(
        server_settings, [registration(uow, changes, ttl, await PageTokens.load(db))]
    )
    await run(
        server,
        background=[expiry_sweeper(uow, settings.sweep_seconds)],
        cleanup=[db.dispose],
        stopping=[changes.close],
    )
