"""`shop up --postgres`: each service's database made on the server, once."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from shop_cli.postgres import database_urls
from shop_cli.suite import SuiteError
from shop_grpc.testing import free_port
from shop_grpc.testing.databases import postgres_server_url


async def _databases(server_url: str, prefix: str) -> set[str]:
    connection = await asyncpg.connect(server_url)
    try:
        rows = await connection.fetch(
            "SELECT datname FROM pg_database WHERE starts_with(datname, $1)", prefix
        )
        return {row["datname"] for row in rows}
    finally:
        await connection.close()


async def _drop(server_url: str, names: set[str]) -> None:
    connection = await asyncpg.connect(server_url)
    try:
        for name in names:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


def test_each_service_gets_a_database_of_its_own_made_once():
    server = postgres_server_url()
    prefix = f"shop_test_{uuid.uuid4().hex[:8]}_"
    try:
        urls = database_urls(server, ["order", "user"], prefix)
        again = database_urls(server, ["order", "user"], prefix)  # already there: no error
        made = asyncio.run(_databases(server, prefix))
    finally:
        asyncio.run(_drop(server, {prefix + "order", prefix + "user"}))
    assert made == {prefix + "order", prefix + "user"}
    assert urls == again
    assert urls["order"].startswith("postgresql://")
    assert urls["order"].endswith(f"/{prefix}order")


def test_a_url_that_is_not_postgresql_is_refused():
    with pytest.raises(SuiteError, match="postgresql://"):
        database_urls("mysql://root@127.0.0.1/shop", ["order"])


def test_a_server_that_does_not_answer_is_named_without_its_password():
    url = f"postgresql://shop:hunter2@127.0.0.1:{free_port()}/postgres"
    with pytest.raises(SuiteError, match=r"127\.0\.0\.1") as refused:
        database_urls(url, ["order"])
    assert "hunter2" not in str(refused.value)
