from __future__ import annotations

import pytest

from shop_grpc.config import ConfigError, Env
from shop_inventory import config


def test_defaults():
    settings = config.load(Env({}))

    assert settings.server.service == "inventory"
    assert settings.server.listen_address == "[::]:50052"
    assert (settings.reservation_ttl_seconds, settings.sweep_seconds) == (600.0, 5.0)


def test_reservation_timings_come_from_the_environment():
    settings = config.load(
        Env({"SHOP_RESERVATION_TTL_SECONDS": "30", "SHOP_RESERVATION_SWEEP_SECONDS": "0.5"})
    )

    assert (settings.reservation_ttl_seconds, settings.sweep_seconds) == (30.0, 0.5)


def test_bad_value_names_the_variable():
    with pytest.raises(ConfigError, match="SHOP_RESERVATION_TTL_SECONDS"):
        config.load(Env({"SHOP_RESERVATION_TTL_SECONDS": "soon"}))
