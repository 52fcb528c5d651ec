"""Composition root: the inventory's own objects (unit of work, servicer, expiry sweeper) on
the storage the runtime opens (shop_grpc.service)."""

from __future__ import annotations

from datetime import timedelta
from functools import partial

from shop_grpc import service
from shop_grpc.changes import ChangeSignal
from shop_grpc.server import App
from shop_inventory.adapters.orm import metadata
from shop_inventory.adapters.unit_of_work import SqlUnitOfWork
from shop_inventory.config import Settings
from shop_inventory.entrypoints.grpc import registration
from shop_inventory.entrypoints.sweeper import expiry_sweeper


async def serve(settings: Settings) -> None:
    await service.serve(settings.server, metadata, partial(build, settings))


def build(settings: Settings, storage: service.Storage) -> App:
    changes = ChangeSignal()
    uow = partial(SqlUnitOfWork, storage.db, changes)
    ttl = timedelta(seconds=settings.reservation_ttl_seconds)
    return App(
        [registration(uow, changes, ttl, storage.tokens)],
        background=[expiry_sweeper(uow, settings.sweep_seconds)],
        stopping=[changes.close],
    )
