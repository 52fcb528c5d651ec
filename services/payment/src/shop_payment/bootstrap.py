"""Composition root: builds the payment service from its settings, then serves."""

from __future__ import annotations

from shop_grpc import logs, telemetry
from shop_grpc.pagination import PageTokens
from shop_grpc.server import GrpcServer, run
from shop_grpc.storage import Database
from shop_payment.adapters.orm import metadata
from shop_payment.config import Settings
from shop_payment.domain.processor import DeterministicProcessor
from shop_payment.entrypoints.grpc import registration


async def serve(settings: Settings) -> None:
    server_settings = settings.server
    logs.configure(
        server_settings.log, service=server_settings.service, instance=server_settings.instance_id
    )
    telemetry.configure(server_settings)
    db = Database(server_settings.database_url)
    await db.migrate(metadata)
    server = GrpcServer(
        server_settings, [registration(db, DeterministicProcessor(), await PageTokens.load(db))]
    )
    await run(server, cleanup=[db.dispose])
