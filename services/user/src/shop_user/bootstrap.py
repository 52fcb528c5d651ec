"""Composition root: the user service's own objects (unit of work, change signal, servicer) on
the storage the runtime opens (shop_grpc.service)."""

from __future__ import annotations

from functools import partial

from shop_grpc import service
from shop_grpc.changes import ChangeSignal
from shop_grpc.server import App
from shop_user.adapters.orm import metadata
from shop_user.adapters.unit_of_work import SqlUnitOfWork
from shop_user.config import Settings
from shop_user.entrypoints.grpc import registration


async def serve(settings: Settings) -> None:
    await service.serve(settings.server, metadata, partial(build, settings))


def build(settings: Settings, storage: service.Storage) -> App:
    changes = ChangeSignal()
    uow = partial(SqlUnitOfWork, storage.db, changes)
    return App([registration(uow, changes, storage.tokens)], stopping=[changes.close])
