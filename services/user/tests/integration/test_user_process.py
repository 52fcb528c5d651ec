"""`python -m shop_user` as an operator runs it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2

from shop.user.v1 import user_pb2, user_pb2_grpc
from shop_grpc.testing import ServiceProcess

SERVICE = "shop.user.v1.UserService"


async def test_it_serves_health_and_reflection_then_stops_cleanly_on_sigterm(tmp_path):
    async with ServiceProcess("shop_user", tmp_path) as service:
        assert await service.health(SERVICE) == health_pb2.HealthCheckResponse.SERVING
        assert {SERVICE, "grpc.health.v1.Health"} <= await service.listed_services()
        assert await service.terminate() == 0
    assert (tmp_path / "user.db").exists()


def test_a_bad_setting_exits_2_naming_the_variable(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "shop_user"],
        env={**os.environ, "SHOP_LOG_LEVEL": "loud", "SHOP_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "SHOP_LOG_LEVEL" in result.stderr


async def test_an_open_watch_ends_with_unavailable_instead_of_holding_up_the_stop(tmp_path):
    async with ServiceProcess("shop_user", tmp_path, grace=10.0) as service:
        watch = user_pb2_grpc.UserServiceStub(service.channel).WatchUsers(
            user_pb2.WatchUsersRequest(), timeout=30
        )
        await asyncio.sleep(0.3)
        started = time.monotonic()
        assert await service.terminate() == 0
        assert time.monotonic() - started < 5
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            async for _ in watch:
                pass
        assert ended.value.code() == grpc.StatusCode.UNAVAILABLE
