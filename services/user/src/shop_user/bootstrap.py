"""Composition root: the user service's own objects (unit of work, change signal, servicer) on
the storage the runtime opens (shop_grpc.service)."""

from __future__ import annotations

from functools import partial

from shop_grpc import service, tokens
from shop_grpc.changes import ChangeSignal
from shop_grpc.server import App
from shop_user.adapters.orm import metadata
from shop_user.adapters.unit_of_work import SqlUnitOfWork
from shop_user.config import Settings
from shop_user.domain import passwords
from shop_user.entrypoints.grpc import SignIn, registration
from shop_user.service_layer.sign_in import Throttles


async def serve(settings: Settings) -> None:
    await service.serve(settings.server, metadata, partial(build, settings))


def build(settings: Settings, storage: service.Storage) -> App:
    changes = ChangeSignal()
    uow = partial(SqlUnitOfWork, storage.db, changes)
    # Made now, so that no sign-in for an unknown account pays for making it.
    passwords.unknown_account_hash()
    signing = SignIn(
        tokens.KeyDirectory(settings.server.tokens.keys_directory), Throttles.default()
    )
    return App([registration(uow, changes, storage.tokens, signing)], stopping=[changes.close])
