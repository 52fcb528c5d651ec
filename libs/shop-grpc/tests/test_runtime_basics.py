"""Config, money, page tokens and storage behave the same everywhere."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, insert, select

from shop_grpc import pagination
from shop_grpc.config import (
    EXIT_MARGIN_SECONDS,
    ConfigError,
    Env,
    ShutdownSettings,
    server_settings,
    stop_timeout,
)
from shop_grpc.errors import InvalidArgument
from shop_grpc.money import CurrencyMismatch, Money
from shop_grpc.storage import Database, UtcDateTime, async_url


def test_settings_default_to_the_embedded_suite():
    settings = server_settings("inventory", Env({}))
    assert settings.listen_address == "[::]:50052"
    assert settings.database_url == "sqlite:///.shop/inventory.db"


def test_the_shutdown_budget_is_its_four_parts_and_a_supervisor_allows_a_margin_more():
    assert server_settings("order", Env({})).shutdown.total_seconds == 18
    variables = {
        "SHOP_SHUTDOWN_DRAIN_SECONDS": "5",
        "SHOP_SHUTDOWN_GRACE_SECONDS": "10",
        "SHOP_SHUTDOWN_BACKGROUND_SECONDS": "4",
        "SHOP_SHUTDOWN_FLUSH_SECONDS": "1.5",
    }
    budget = server_settings("order", Env(variables)).shutdown
    assert budget == ShutdownSettings(
        drain_seconds=5, grace_seconds=10, background_seconds=4, flush_seconds=1.5
    )
    assert budget.total_seconds == 20.5
    assert stop_timeout(variables) == 20.5 + EXIT_MARGIN_SECONDS
    with pytest.raises(ConfigError, match="SHOP_SHUTDOWN_FLUSH_SECONDS"):
        server_settings("order", Env({"SHOP_SHUTDOWN_FLUSH_SECONDS": "-1"}))


def test_a_bad_variable_is_reported_by_name():
    with pytest.raises(ConfigError, match="SHOP_SHUTDOWN_GRACE_SECONDS"):
        server_settings("order", Env({"SHOP_SHUTDOWN_GRACE_SECONDS": "soon"}))
    with pytest.raises(ConfigError, match="SHOP_LOG_FORMAT"):
        server_settings("order", Env({"SHOP_LOG_FORMAT": "xml"}))


def test_money_adds_in_minor_units_and_refuses_to_mix_currencies():
    assert Money("USD", 1999) + Money("USD", 1) == Money("USD", 2000)
    assert Money("USD", 1250) * 3 == Money("USD", 3750)
    assert str(Money("USD", 1999)) == "19.99 USD"
    with pytest.raises(CurrencyMismatch):
        Money("USD", 1) + Money("EUR", 1)


def test_page_tokens_round_trip_and_reject_foreign_or_forged_tokens():
    token = pagination.encode("users", ["2026-01-01T00:00:00+00:00", "u-1"])
    assert pagination.decode("users", token) == ["2026-01-01T00:00:00+00:00", "u-1"]
    assert pagination.decode("users", "") is None
    for bad in (pagination.encode("orders", ["x"]), "not-a-token!", "e30"):
        with pytest.raises(InvalidArgument):
            pagination.decode("users", bad)


def test_plain_urls_get_the_async_drivers():
    assert async_url("postgresql://postgres@db/shop").startswith("postgresql+asyncpg://")
    assert async_url("sqlite:///x.db") == "sqlite+aiosqlite:///x.db"


async def test_datetimes_come_back_as_the_same_utc_instant(database_url):
    metadata = MetaData()
    table = Table("t", metadata, Column("id", Integer, primary_key=True), Column("at", UtcDateTime))
    db = Database(database_url)
    await db.migrate(metadata)
    written = datetime(2026, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    async with db.session() as session:
        await session.execute(insert(table).values(id=1, at=written))
        await session.commit()
        read = (await session.execute(select(table.c.at))).scalar_one()
    await db.dispose()
    assert read == written
    assert read.tzinfo is UTC
