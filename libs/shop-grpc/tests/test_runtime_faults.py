"""SHOP_FAULTS, the test-only fault injection: off unless set, refused when malformed
(shop_grpc.faults)."""

from __future__ import annotations

import pytest

from shop_grpc.config import ConfigError, Env, server_settings


@pytest.mark.parametrize(
    "spec", ["Charge", "x.Y/Charge=sleep:1s", "x.Y/Charge=delay:soon", "x.Y=fail:OK", "=delay:1s"]
)
def test_bad_fault_specs_are_config_errors(spec: str) -> None:
    with pytest.raises(ConfigError, match="SHOP_FAULTS"):
        server_settings("payment", Env({"SHOP_INSECURE": "1", "SHOP_FAULTS": spec}))


def test_faults_are_off_unless_configured() -> None:
    assert server_settings("payment", Env({"SHOP_INSECURE": "1"})).faults == ()
