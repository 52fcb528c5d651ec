"""The start every service shares, so that a service's bootstrap builds only its own objects.

serve(settings, metadata, build)
    logging and telemetry from the settings, then server.run():
    the probe port (NOT_SERVING); the database, once it answers, migrated; the page-token
    key loaded; build(storage) -> App, the service's own objects; serving; the stop,
    the database closed last.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

from sqlalchemy import MetaData

from shop_grpc import logs, metrics, telemetry
from shop_grpc.config import ServerSettings
from shop_grpc.pagination import PageTokens
from shop_grpc.server import App, run
from shop_grpc.storage import Database


@dataclass(frozen=True)
class Storage:
    """What the runtime opens for a service before the service builds on it."""

    db: Database
    tokens: PageTokens
    """The database's page-token key: every replica seals and opens the same tokens."""

    @classmethod
    async def open(cls, url: str, metadata: MetaData) -> Storage:
        """Waits until the database answers, creates missing tables, loads the token key."""
        db = Database(url)
        await db.migrate_when_reachable(metadata)
        return cls(db, await PageTokens.load(db))


Build = Callable[[Storage], App]


async def serve(settings: ServerSettings, metadata: MetaData, build: Build) -> None:
    """Runs the service whose tables are `metadata` and whose objects `build` makes, until
    SIGTERM or SIGINT (server.run)."""
    logs.configure(settings.log, service=settings.service, instance=settings.instance_id)
    telemetry.configure(settings)
    metrics.configure(settings)
    await run(settings, partial(_start, settings, metadata, build))


async def _start(settings: ServerSettings, metadata: MetaData, build: Build) -> App:
    storage = await Storage.open(settings.database_url, metadata)
    app = build(storage)
    # Last: the service's own cleanup (a saga still saving) may need the database.
    return replace(app, cleanup=[*app.cleanup, storage.db.dispose])
