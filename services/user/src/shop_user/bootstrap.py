"""Composition root: builds the database, the servicer and the server, then serves."""

from __future__ import annotations

from functools import partial

from shop_grpc import logs, telemetry
from shop_grpc.changes import ChangeSignal
from shop_grpc.pagination import PageTokens
from shop_grpc.server import App, run
from shop_grpc.storage import Database
from shop_user.adapters.orm import metadata
from shop_user.adapters.unit_of_work import SqlUnitOfWork
from shop_user.config import Settings
from shop_user.entrypoints.grpc import registration


async def serve(settings: Settings) -> None:
    server_settings = settings.server
    logs.configure(
        server_settings.log, service=server_settings.service, instance=server_settings.instance_id
    )
    telemetry.configure(server_settings)
    await run(server_settings, partial(start, settings))


async def start(settings: Settings) -> App:
    """Waits for the database (the probe port says NOT_SERVING meanwhile), then builds."""
    db = Database(settings.server.database_url)
    await db.migrate_when_reachable(metadata)
    changes = ChangeSignal()
    uow = partial(SqlUnitOfWork, db, changes)
    return App(
        [registration(uow, changes, await PageTokens.load(db))],
        cleanup=[db.dispose],
        stopping=[changes.close],
    )
