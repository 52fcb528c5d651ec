"""SHOP_FAULTS injected into served calls (shop_grpc.interceptors.faults): only where the
spec points, a delay or a status."""

from __future__ import annotations

import time
from pathlib import Path

import grpc

from shop_grpc import faults
from shop_grpc.testing import rpc_fails, serving, test_settings


async def test_fault_hook_delays_the_chosen_method_only(back, tmp_path: Path) -> None:
    settings = test_settings(
        "inventory",
        f"sqlite:///{tmp_path / 'unused.db'}",
        faults=faults.parse(f"{back.service}/Remaining=delay:300ms"),
    )
    async with serving(settings, [back.registration()]) as channel:
        started = time.monotonic()
        await channel.unary_unary(f"/{back.service}/Remaining")(b"", timeout=5)
        slowed = time.monotonic() - started
        started = time.monotonic()
        async for _ in channel.unary_stream(f"/{back.service}/RemainingStream")(b"", timeout=5):
            pass
        untouched = time.monotonic() - started

    assert slowed >= 0.3
    assert untouched < 0.3


async def test_fault_hook_can_fail_a_whole_service(back, tmp_path: Path) -> None:
    settings = test_settings(
        "inventory",
        f"sqlite:///{tmp_path / 'unused.db'}",
        faults=faults.parse(f"{back.service}=fail:unavailable"),
    )
    async with serving(settings, [back.registration()]) as channel:
        with rpc_fails(grpc.StatusCode.UNAVAILABLE):
            await channel.unary_unary(f"/{back.service}/Remaining")(b"", timeout=5)

    assert back.calls == 0
