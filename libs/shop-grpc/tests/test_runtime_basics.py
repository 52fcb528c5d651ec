"""Config, money, page tokens and storage behave the same everywhere."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import asyncpg
import pytest
import structlog
from sqlalchemy import Column, Integer, MetaData, Table, insert, select
from sqlalchemy.engine import make_url

from shop_grpc import storage
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
from shop_grpc.pagination import PageTokens
from shop_grpc.storage import Database, UtcDateTime, async_url
from shop_grpc.testing import free_port, postgres_server_url


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


def test_page_tokens_round_trip_with_their_types():
    tokens = PageTokens(bytes(32))
    at = datetime(2026, 1, 1, tzinfo=UTC)
    token = tokens.issue("users", [at, "u-1"])
    assert tokens.read_time_and_id("users", token) == (at, "u-1")
    assert tokens.read_id("products", tokens.issue("products", ["widget"])) == "widget"
    assert tokens.read_time_and_id("users", "") is None
    assert "u-1" not in base64.urlsafe_b64decode(token + "==").decode(errors="replace")


def _sealed(tokens: PageTokens, scope: str, plain: bytes) -> str:
    """A token this key really sealed, holding whatever `plain` says (a server bug's token)."""
    nonce = bytes(12)
    raw = nonce + tokens._aead.encrypt(nonce, plain, scope.encode())
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _forged(scope_key: list[object]) -> str:
    """A token as the first format made them: readable JSON, no seal (the issue's example)."""
    raw = json.dumps({"s": "orders/u", "k": scope_key}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_any_token_this_list_did_not_issue_is_invalid_argument_on_page_token():
    tokens = PageTokens(bytes(32))
    good = tokens.issue("orders/u", [datetime(2026, 1, 1, tzinfo=UTC), "o-1"])
    flipped = good[:-2] + ("A" if good[-2] != "A" else "B") + good[-1]
    bad = [
        _forged(["x", "y"]),
        _forged([1, 2, 3]),
        "not-a-token!",
        "e30",
        flipped,
        good[:10],
        tokens.issue("orders/v", [datetime(2026, 1, 1, tzinfo=UTC), "o-1"]),  # other user
        PageTokens(bytes(range(32))).issue("orders/u", [datetime.now(UTC), "o"]),  # other key
        _sealed(tokens, "orders/u", b'["x","y"]'),  # sealed, but not a time
        _sealed(tokens, "orders/u", b'["2026-01-01T00:00:00","o"]'),  # naive time
        _sealed(tokens, "orders/u", b'["2026-01-01T00:00:00+00:00",5]'),
        _sealed(tokens, "orders/u", b'{"k":1}'),
        _sealed(tokens, "orders/u", b"\xff\xfe"),
    ]
    # The same bytes spelled otherwise: the unused low bits of the last base64 character.
    short = tokens.issue("orders/u", [datetime(2026, 1, 1, tzinfo=UTC), "o"])
    while len(short) % 4 != 2:
        short = tokens.issue("orders/u", [datetime(2026, 1, 1, tzinfo=UTC), "o" + short[:3]])
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    low_bits = alphabet.index(short[-1]) & 0b1111
    bad.append(short[:-1] + alphabet[alphabet.index(short[-1]) - low_bits + (low_bits ^ 1)])
    assert base64.urlsafe_b64decode(bad[-1] + "==") == base64.urlsafe_b64decode(short + "==")
    for token in bad:
        with pytest.raises(InvalidArgument) as caught:
            tokens.read_time_and_id("orders/u", token)
        assert [v.field for v in caught.value.violations] == ["page_token"], token
    with pytest.raises(InvalidArgument):
        tokens.read_id("products", _sealed(tokens, "products", b"[true]"))


async def test_every_replica_of_a_database_shares_one_page_token_key(database_url):
    first, second = Database(database_url), Database(database_url)
    await first.migrate(MetaData())
    keys = await asyncio.gather(first.secret("page-tokens"), second.secret("page-tokens"))
    assert keys[0] == keys[1]
    assert len(keys[0]) == 32
    assert await first.secret("other") != keys[0]
    token = (await PageTokens.load(first)).issue("users", ["u"])
    assert (await PageTokens.load(second)).read_id("users", token) == "u"
    await first.dispose()
    await second.dispose()


WAITING = "database not ready; trying again"


async def test_a_database_not_there_yet_is_tried_again_saying_why_but_not_its_password(
    monkeypatch,
):
    # Small waits, so that the doubling and its ceiling show within half a second.
    monkeypatch.setattr(storage, "RETRY_INITIAL_SECONDS", 0.01)
    monkeypatch.setattr(storage, "RETRY_MAX_SECONDS", 0.04)
    port = free_port()  # nothing listens there
    db = Database(f"postgresql://shop_order:Pa55-w0rd-x@127.0.0.1:{port}/shop_order")
    with structlog.testing.capture_logs() as lines:
        waiting = asyncio.create_task(db.migrate_when_reachable(MetaData()))
        await asyncio.sleep(0.5)
        assert not waiting.done()
        waiting.cancel()  # as a SIGTERM during the start does
        with pytest.raises(asyncio.CancelledError):
            await waiting
    await db.dispose()
    tries = [line for line in lines if line["event"] == WAITING]
    assert len(tries) >= 5
    assert {line["database"] for line in tries} == {
        f"postgresql+asyncpg://shop_order:***@127.0.0.1:{port}/shop_order"
    }
    assert all(line["reason"].startswith("ConnectionRefusedError: ") for line in tries)
    waits = [line["retry_in_seconds"] for line in tries]
    assert waits[0] <= 0.01 and max(waits) <= 0.04 and waits[-1] >= 0.02
    assert "Pa55-w0rd-x" not in repr(lines)


async def test_the_wait_ends_once_the_database_is_made_and_said_what_was_missing(monkeypatch):
    server = make_url(postgres_server_url()).set(drivername="postgresql")
    monkeypatch.setattr(storage, "RETRY_INITIAL_SECONDS", 0.01)
    monkeypatch.setattr(storage, "RETRY_MAX_SECONDS", 0.04)
    name = f"shop_test_{uuid.uuid4().hex[:12]}"  # made only once the service waits for it
    db = Database(server.set(database=name).render_as_string(hide_password=False))
    admin = await asyncpg.connect(server.render_as_string(hide_password=False))
    try:
        with structlog.testing.capture_logs() as lines:
            waiting = asyncio.create_task(db.migrate_when_reachable(MetaData()))
            async with asyncio.timeout(10):
                while not any(line["event"] == WAITING for line in lines):
                    await asyncio.sleep(0.01)
            await admin.execute(f'CREATE DATABASE "{name}"')
            await asyncio.wait_for(waiting, 10)
        await db.dispose()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    reasons = {line["reason"] for line in lines if line["event"] == WAITING}
    assert reasons == {f'InvalidCatalogNameError: database "{name}" does not exist'}
    assert lines[-1]["event"] == "database ready"


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


def test_replicas_on_one_host_get_instance_ids_of_their_own():
    # Equal ids would make each replica take the other's saga leases for its own earlier boot's.
    one = server_settings("order", Env({"SHOP_LISTEN_ADDRESS": "[::]:57051"}))
    two = server_settings("order", Env({"SHOP_LISTEN_ADDRESS": "[::]:57061"}))
    assert one.instance_id != two.instance_id
    assert one.instance_id.endswith(":57051")


def test_an_instance_id_that_cannot_be_stored_is_refused_at_start():
    with pytest.raises(ConfigError, match="SHOP_INSTANCE_ID"):
        server_settings("order", Env({"SHOP_INSTANCE_ID": "order-" + "x" * 230}))
