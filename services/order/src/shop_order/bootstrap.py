"""Composition root: builds the order service from its settings, then serves."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import grpc

from shop_grpc import logs, telemetry
from shop_grpc.changes import ChangeSignal
from shop_grpc.channels import open_channel
from shop_grpc.pagination import PageTokens
from shop_grpc.server import App, run
from shop_grpc.storage import Database
from shop_order.adapters.clients import (
    INVENTORY_SERVICE,
    PAYMENT_SERVICE,
    USER_SERVICE,
    GrpcInventory,
    GrpcPayments,
    GrpcUsers,
)
from shop_order.adapters.orm import metadata
from shop_order.adapters.unit_of_work import SqlUnitOfWork
from shop_order.config import Settings
from shop_order.domain.model import Lease
from shop_order.entrypoints.grpc import OrderServicer, registration
from shop_order.service_layer.ports import Dependencies
from shop_order.service_layer.saga_runner import SagaRunner


@dataclass
class OrderApp:
    db: Database
    channels: list[grpc.aio.Channel]
    runner: SagaRunner
    servicer: OrderServicer

    async def close(self) -> None:
        await self.runner.stop()
        for channel in self.channels:
            await channel.close()
        await self.db.dispose()


def connect(settings: Settings) -> tuple[Dependencies, list[grpc.aio.Channel]]:
    def dependency(target: str, service: str, server_name: str) -> grpc.aio.Channel:
        # Every call the saga makes is idempotent (keyed by order id), so all may be retried.
        # The channel presents order's certificate and checks the service's name on the
        # other end; calls made outside any inbound call (recovery) get the default budget.
        return open_channel(
            target,
            retry_services=[service],
            tls=settings.server.tls,
            server_name=server_name,
            default_timeout=settings.server.default_deadline_seconds,
        )

    users = dependency(settings.targets.user, USER_SERVICE, "user")
    inventory = dependency(settings.targets.inventory, INVENTORY_SERVICE, "inventory")
    payment = dependency(settings.targets.payment, PAYMENT_SERVICE, "payment")
    deps = Dependencies(
        users=GrpcUsers(users),
        inventory=GrpcInventory(inventory),
        payments=GrpcPayments(payment),
    )
    return deps, [users, inventory, payment]


async def build(settings: Settings, deps: Dependencies | None = None) -> OrderApp:
    """Waits for the database, then builds; nothing runs yet (recovery starts with serving)."""
    db = Database(settings.server.database_url)
    await db.migrate_when_reachable(metadata)
    channels: list[grpc.aio.Channel] = []
    if deps is None:
        deps, channels = connect(settings)
    signal = ChangeSignal(poll_seconds=0.5)
    lease = Lease(settings.server.instance_id, settings.boot_id, settings.saga.lease_seconds)
    uow = partial(SqlUnitOfWork, db)
    runner = SagaRunner(uow, deps, lease, signal, settings.saga)
    tokens = await PageTokens.load(db)
    servicer = OrderServicer(uow, deps, runner, signal, settings.waits, tokens)
    return OrderApp(db, channels, runner, servicer)


async def serve(settings: Settings) -> None:
    logs.configure(settings.server.log, service="order", instance=settings.server.instance_id)
    telemetry.configure(settings.server)
    await run(settings.server, partial(start, settings))


async def start(settings: Settings) -> App:
    """The probe port says NOT_SERVING while this waits for the database; saga recovery is a
    background job, so it runs only once the database is ready and the service serves."""
    app = await build(settings)
    return App(
        [registration(app.servicer)],
        background=[app.runner.recover_forever],
        cleanup=[app.close],
        stopping=[app.runner.signal.close],
    )
