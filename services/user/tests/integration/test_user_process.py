"""`python -m shop_user` as an operator runs it: what only this service does (the rest:
tests/contract)."""

from __future__ import annotations

import asyncio
import time

import grpc

from shop.user.v1 import user_pb2, user_pb2_grpc
from shop_grpc.testing import ServiceProcess, rpc_fails


async def test_an_open_watch_ends_with_unavailable_instead_of_holding_up_the_stop(tmp_path):
    async with ServiceProcess("shop_user", tmp_path, grace=10.0) as service:
        watch = user_pb2_grpc.UserServiceStub(service.channel).WatchUsers(
            user_pb2.WatchUsersRequest(), timeout=30
        )
        await asyncio.sleep(0.3)
        started = time.monotonic()
        assert await service.terminate() == 0
        assert time.monotonic() - started < 5
        with rpc_fails(grpc.StatusCode.UNAVAILABLE):
            async for _ in watch:
                pass
