"""SHOP_FAULTS injected into served calls (shop_grpc.interceptors.faults): only where the
spec points, a delay or a status."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc

from shop_grpc import faults
from shop_grpc.testing import rpc_fails, serving, test_settings


@asynccontextmanager
async def _serving_with(back, spec: str) -> AsyncIterator[grpc.aio.Channel]:
    """A channel to `back`, served with the faults of SHOP_FAULTS=`spec`."""
    settings = test_settings("inventory", "sqlite://", faults=faults.parse(spec))
    async with serving(settings, [back.registration()]) as channel:
        yield channel


async def test_fault_hook_delays_the_chosen_method_only(back) -> None:
    async with _serving_with(back, f"{back.service}/Remaining=delay:300ms") as channel:
        started = time.monotonic()
        await channel.unary_unary(f"/{back.service}/Remaining")(b"", timeout=5)
        slowed = time.monotonic() - started
        started = time.monotonic()
        async for _ in channel.unary_stream(f"/{back.service}/RemainingStream")(b"", timeout=5):
            pass
        untouched = time.monotonic() - started

    assert slowed >= 0.3
    assert untouched < 0.3


async def test_fault_hook_can_fail_a_whole_service(back) -> None:
    async with _serving_with(back, f"{back.service}=fail:unavailable") as channel:
        with rpc_fails(grpc.StatusCode.UNAVAILABLE):
            await channel.unary_unary(f"/{back.service}/Remaining")(b"", timeout=5)

    assert back.calls == 0
