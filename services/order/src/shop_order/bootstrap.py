"""Composition root: the order service's own objects (channels to its dependencies, unit of
work, saga runner, servicer) on the storage the runtime opens (shop_grpc.service)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import grpc

from shop_grpc import service
from shop_grpc.changes import ChangeSignal
from shop_grpc.channels import open_channel
from shop_grpc.server import App
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
    channels: list[grpc.aio.Channel]
    runner: SagaRunner
    servicer: OrderServicer

    def app(self) -> App:
        """Saga recovery is a background job: it runs only once the service serves."""
        return App(
            [registration(self.servicer)],
            background=[self.runner.recover_forever],
            cleanup=[self.close],
            stopping=[self.runner.signal.close],
        )

    async def close(self) -> None:
        await self.runner.stop()
        for channel in self.channels:
            await channel.close()


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


def assemble(
    settings: Settings, storage: service.Storage, deps: Dependencies | None = None
) -> OrderApp:
    """Builds on `storage`, with real dependencies unless `deps` stands in for them; nothing
    runs yet."""
    channels: list[grpc.aio.Channel] = []
    if deps is None:
        deps, channels = connect(settings)
    signal = ChangeSignal(poll_seconds=0.5)
    lease = Lease(settings.server.instance_id, settings.boot_id, settings.saga.lease_seconds)
    uow = partial(SqlUnitOfWork, storage.db)
    runner = SagaRunner(uow, deps, lease, signal, settings.saga)
    servicer = OrderServicer(uow, deps, runner, signal, settings.waits, storage.tokens)
    return OrderApp(channels, runner, servicer)


def build(settings: Settings, storage: service.Storage) -> App:
    return assemble(settings, storage).app()


async def serve(settings: Settings) -> None:
    await service.serve(settings.server, metadata, partial(build, settings))
