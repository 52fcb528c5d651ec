"""`shop up --postgres`: every service on a database of its own on one PostgreSQL server.

The databases are named ``shop_<service>`` and made on first use; the server's URL names the
user to connect as (who needs the CREATEDB privilege the first time) and any database to
connect to while making them (``postgres`` when none is given).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from urllib.parse import urlsplit

import asyncpg

from shop_cli.suite import SuiteError

DATABASE_PREFIX = "shop_"
CONNECT_TIMEOUT_SECONDS = 10.0


def database_urls(
    server_url: str, services: Iterable[str], prefix: str = DATABASE_PREFIX
) -> dict[str, str]:
    """Service -> its SHOP_DATABASE_URL on the server of `server_url` (``postgresql://…``):
    the database `prefix` + service name, made if missing.

    Raises SuiteError, naming the server but not its password, when the URL is not a
    PostgreSQL one, the server cannot be reached, or it refuses the user or the CREATE.
    """
    parts = urlsplit(server_url)
    if parts.scheme not in {"postgresql", "postgres"} or not parts.hostname:
        raise SuiteError(
            f"--postgres wants postgresql://USER@HOST[:PORT][/DATABASE], not {server_url!r}"
        )
    names = {service: prefix + service for service in services}
    where = f"{parts.hostname}:{parts.port or 5432}"
    # Connected to while making them: the URL's database, or `postgres`.
    admin = parts._replace(path="/postgres") if parts.path in {"", "/"} else parts
    try:
        asyncio.run(_make_missing(admin.geturl(), sorted(names.values())))
    except (OSError, TimeoutError, asyncpg.PostgresError) as error:
        raise SuiteError(f"PostgreSQL at {where}: {type(error).__name__}: {error}") from None
    return {
        service: parts._replace(scheme="postgresql", path=f"/{name}").geturl()
        for service, name in names.items()
    }


async def _make_missing(admin_url: str, names: list[str]) -> None:
    connection = await asyncpg.connect(admin_url, timeout=CONNECT_TIMEOUT_SECONDS)
    try:
        present = {
            row["datname"]
            for row in await connection.fetch(
                "SELECT datname FROM pg_database WHERE datname = ANY($1::text[])", names
            )
        }
        for name in names:
            if name in present:
                continue
            # Another `shop up` may make it first.
            with contextlib.suppress(asyncpg.DuplicateDatabaseError):
                # Service names and the prefix: letters, digits and underscores only.
                await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
