"""Test databases (shop_grpc.testing.databases): a fresh SQLite file in the test's directory,
PostgreSQL only where SHOP_TEST_POSTGRES_URL names a server, no other engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from shop_grpc.testing import POSTGRES_ENV, fresh_database_url, postgres_server_url


async def test_a_sqlite_database_is_a_file_in_the_tests_directory(tmp_path: Path) -> None:
    async with fresh_database_url("sqlite", tmp_path) as url:
        assert url == f"sqlite:///{tmp_path / 'test.db'}"


async def test_another_engine_is_refused_naming_the_ones_there_are(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"'mysql'.*sqlite"):
        async with fresh_database_url("mysql", tmp_path):
            pass


def test_without_a_postgresql_server_the_test_is_skipped_saying_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(POSTGRES_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match=POSTGRES_ENV):
        postgres_server_url()
