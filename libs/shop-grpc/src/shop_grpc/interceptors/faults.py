"""Injects the faults configured by SHOP_FAULTS (see shop_grpc.faults); tests only."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import grpc
import structlog

from shop_grpc.faults import Fault
from shop_grpc.interceptors._wrap import AroundEachCall, Behavior

log = structlog.get_logger("shop_grpc.faults")


class FaultInjection(AroundEachCall):
    def __init__(self, faults: Sequence[Fault]) -> None:
        self.faults = tuple(faults)
        log.warning(
            "FAULT INJECTION IS ON: calls will be slowed or failed on purpose; tests only",
            faults=[f"{f.target}: delay {f.delay_seconds}s fail {f.fail_with}" for f in faults],
        )

    def applies_to(self, method: str) -> bool:
        return any(f.applies_to(method) for f in self.faults)

    def advise(self, method: str, behavior: Behavior) -> Behavior:
        async def faulty(request: Any, context: grpc.aio.ServicerContext) -> Any:
            await self._inject(method, context)
            return await behavior(request, context)

        return faulty

    async def _inject(self, method: str, context: grpc.aio.ServicerContext) -> None:
        left = context.time_remaining()
        for fault in self.faults:
            if not fault.applies_to(method):
                continue
            log.warning(
                "fault injected",
                rpc=method,
                delay_ms=round(fault.delay_seconds * 1000),
                fail_with=fault.fail_with.name if fault.fail_with else None,
                # Wall-clock time, comparable across processes on one machine.
                deadline_unix=None if left is None else time.time() + left,
                time_remaining_ms=None if left is None else round(left * 1000, 1),
            )
            await asyncio.sleep(fault.delay_seconds)
            if fault.fail_with is not None:
                await context.abort(fault.fail_with, f"injected fault: {fault.fail_with.name}")
