"""The start every service shares (shop_grpc.service): the database made and its page-token
key loaded before the service builds on them, and closed after the service's own cleanup."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Table

from shop_grpc import service
from shop_grpc.server import App
from shop_grpc.testing import test_settings


async def test_the_service_builds_on_a_migrated_database_whose_close_comes_last(
    tmp_path: Path, keys: Table, count_keys
) -> None:
    settings = test_settings("order", f"sqlite:///{tmp_path / 'service.db'}")
    built: list[service.Storage] = []

    async def own_cleanup() -> None:
        pass

    def build(storage: service.Storage) -> App:
        built.append(storage)
        return App(services=[], cleanup=[own_cleanup])

    app = await service._start(settings, keys.metadata, build)

    [storage] = built
    assert list(app.cleanup) == [own_cleanup, storage.db.dispose]
    assert await count_keys(storage.db) == 0  # the service's table is made
    token = storage.tokens.issue("keys", ["a"])
    assert storage.tokens.read_id("keys", token) == "a"
    for close in app.cleanup:
        await close()
