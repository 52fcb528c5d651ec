"""Composition root: builds the payment service from its settings, then serves."""

from __future__ import annotations

from functools import partial

from shop_grpc import logs, telemetry
from shop_grpc.pagination import PageTokens
from shop_grpc.server import App, run
from shop_grpc.storage import Database
from shop_payment.adapters.orm import metadata
from shop_payment.adapters.unit_of_work import SqlUnitOfWork
from shop_payment.config import Settings
from shop_payment.domain.processor import DeterministicProcessor
from shop_payment.entrypoints.grpc import registration


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
    tokens = await PageTokens.load(db)
    uow = partial(SqlUnitOfWork, db)
    return App([registration(uow, DeterministicProcessor(), tokens)], cleanup=[db.dispose])
