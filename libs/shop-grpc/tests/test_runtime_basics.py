"""Config, money, page tokens and storage behave the same everywhere."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest

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


def test_replicas_on_one_host_get_instance_ids_of_their_own():
    # Equal ids would make each replica take the other's saga leases for its own earlier boot's.
    one = server_settings("order", Env({"SHOP_LISTEN_ADDRESS": "[::]:57051"}))
    two = server_settings("order", Env({"SHOP_LISTEN_ADDRESS": "[::]:57061"}))
    assert one.instance_id != two.instance_id
    assert one.instance_id.endswith(":57051")


def test_an_instance_id_that_cannot_be_stored_is_refused_at_start():
    with pytest.raises(ConfigError, match="SHOP_INSTANCE_ID"):
        server_settings("order", Env({"SHOP_INSTANCE_ID": "order-" + "x" * 230}))
