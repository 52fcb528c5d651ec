"""Composition root: the payment service's own objects (unit of work, processor, servicer) on
the storage the runtime opens (shop_grpc.service)."""

from __future__ import annotations

from functools import partial

from shop_grpc import service
from shop_grpc.server import App
from shop_payment.adapters.orm import metadata
from shop_payment.adapters.unit_of_work import SqlUnitOfWork
from shop_payment.config import Settings
from shop_payment.domain.processor import DeterministicProcessor
from shop_payment.entrypoints.grpc import registration


async def serve(settings: Settings) -> None:
    await service.serve(settings.server, metadata, partial(build, settings))


def build(settings: Settings, storage: service.Storage) -> App:
    uow = partial(SqlUnitOfWork, storage.db)
    return App([registration(uow, DeterministicProcessor(), storage.tokens)])
