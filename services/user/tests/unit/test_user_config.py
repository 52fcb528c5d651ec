import pytest

from shop_grpc.config import ConfigError, Env
from shop_user import config


def test_defaults_serve_on_port_50054_with_sqlite_under_the_data_dir():
    settings = config.load(Env({"SHOP_DATA_DIR": "/var/shop"}))
    assert settings.server.service == "user"
    assert settings.server.listen_address.endswith(":50054")
    assert settings.server.database_url == "sqlite:////var/shop/user.db"


def test_environment_overrides_the_defaults():
    settings = config.load(
        Env({"SHOP_LISTEN_ADDRESS": "127.0.0.1:9000", "SHOP_DATABASE_URL": "postgresql://db/u"})
    )
    assert settings.server.listen_address == "127.0.0.1:9000"
    assert settings.server.database_url == "postgresql://db/u"


def test_a_bad_value_names_the_variable():
    with pytest.raises(ConfigError, match="SHOP_LOG_LEVEL"):
        config.load(Env({"SHOP_LOG_LEVEL": "loud"}))
