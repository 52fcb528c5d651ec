import pytest

from shop_grpc.config import ConfigError, Env
from shop_payment.config import load


def test_defaults_serve_on_the_payment_port_with_sqlite_in_the_data_dir():
    settings = load(Env({"SHOP_DATA_DIR": "/data"}))
    assert settings.server.service == "payment"
    assert settings.server.listen_address == "[::]:50053"
    assert settings.server.database_url == "sqlite:////data/payment.db"


def test_environment_overrides():
    settings = load(
        Env(
            {
                "SHOP_LISTEN_ADDRESS": "127.0.0.1:6000",
                "SHOP_DATABASE_URL": "postgresql://db/payment",
                "SHOP_SHUTDOWN_GRACE_SECONDS": "3",
            }
        )
    )
    assert settings.server.listen_address == "127.0.0.1:6000"
    assert settings.server.database_url == "postgresql://db/payment"
    assert settings.server.shutdown.grace_seconds == 3.0


def test_bad_values_name_the_variable():
    with pytest.raises(ConfigError, match="SHOP_LOG_FORMAT"):
        load(Env({"SHOP_LOG_FORMAT": "xml"}))
