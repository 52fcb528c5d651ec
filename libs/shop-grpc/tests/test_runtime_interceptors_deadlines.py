"""The inbound call's deadline bound for its handler (shop_grpc.interceptors.deadlines): the
service's default budget when the caller set none, and a stray CancelledError answered."""

from __future__ import annotations

import time

import grpc

from shop_grpc.testing import rpc_fails


async def test_call_without_deadline_gets_the_default_budget(hops) -> None:
    seen = await hops.relay("Remaining")

    assert seen is not None
    assert 2.5 < seen <= 3.0


async def test_a_stray_cancelled_error_is_answered_not_left_hanging(hops) -> None:
    started = time.monotonic()
    with rpc_fails(grpc.StatusCode.CANCELLED):
        await hops.client.unary_unary(f"/{hops.front}/StrayCancel")(b"", timeout=10)

    assert time.monotonic() - started < 2
