"""config: settings read once from the environment, their defaults, and the variable a bad
value is reported by."""

from __future__ import annotations

from pathlib import Path

import pytest

from shop_grpc import certs
from shop_grpc.config import (
    EXIT_MARGIN_SECONDS,
    ConfigError,
    Env,
    ShutdownSettings,
    server_settings,
    stop_timeout,
)
from shop_grpc.server import GrpcServer


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


def test_replicas_on_one_host_get_instance_ids_of_their_own():
    # Equal ids would make each replica take the other's saga leases for its own earlier boot's.
    one = server_settings("order", Env({"SHOP_LISTEN_ADDRESS": "[::]:57051"}))
    two = server_settings("order", Env({"SHOP_LISTEN_ADDRESS": "[::]:57061"}))
    assert one.instance_id != two.instance_id
    assert one.instance_id.endswith(":57051")


def test_an_instance_id_that_cannot_be_stored_is_refused_at_start():
    with pytest.raises(ConfigError, match="SHOP_INSTANCE_ID"):
        server_settings("order", Env({"SHOP_INSTANCE_ID": "order-" + "x" * 230}))


def test_plaintext_needs_an_explicit_opt_out(tmp_path, namespace):
    assert server_settings("user", Env({})).tls.directory == Path("/etc/shop/tls")
    missing = server_settings("user", Env({"SHOP_TLS_DIR": str(tmp_path)}))
    with pytest.raises(ConfigError, match="SHOP_TLS_DIR"):
        GrpcServer(missing, [])
    assert server_settings("user", Env({"SHOP_INSECURE": "1"})).tls.directory is None
    certs.init(tmp_path, namespace, identities=["user"])
    settings = server_settings("user", Env({"SHOP_TLS_DIR": str(tmp_path / "user")}))
    assert settings.tls.directory == tmp_path / "user"
    assert settings.probe_address == "[::]:8081"


def test_the_metrics_address_is_checked_and_can_be_turned_off() -> None:
    assert server_settings("order", Env({})).metrics_address == "[::]:9090"
    assert server_settings("order", Env({"SHOP_METRICS_ADDRESS": "OFF"})).metrics_address == ""
    given = {"SHOP_METRICS_ADDRESS": "127.0.0.1:9101"}
    assert server_settings("order", Env(given)).metrics_address == "127.0.0.1:9101"
    for wrong in ("9090", "localhost:http", "[::]:70000"):
        with pytest.raises(ConfigError, match="SHOP_METRICS_ADDRESS"):
            server_settings("order", Env({"SHOP_METRICS_ADDRESS": wrong}))
