import pytest
from sqlalchemy import MetaData

from shop_grpc.testing import database_url, db  # noqa: F401  (fixtures: SQLite and PostgreSQL)
from shop_user.adapters.orm import metadata


@pytest.fixture
def db_metadata() -> MetaData:
    return metadata
