"""Binds the method to the log context and writes one line per finished call.

The line's ``code`` is the status the caller receives (shop_grpc.outcome): CANCELLED
when the client cancelled, DEADLINE_EXCEEDED once the deadline passed.
"""

from __future__ import annotations

import time
from typing import Any

import grpc
import structlog

from shop_grpc.interceptors._wrap import AroundEachCall, Behavior
from shop_grpc.outcome import Outcome

log = structlog.get_logger("shop_grpc.rpc")

# Probes and tooling would drown the log; their outcome is visible elsewhere.
QUIET_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


class RequestLogging(AroundEachCall):
    """Health checks and reflection pass by unlogged: nothing is bound for them."""

    def applies_to(self, method: str) -> bool:
        return not method.startswith(QUIET_PREFIXES)

    def advise(self, method: str, behavior: Behavior) -> Behavior:
        async def logged(request: Any, context: grpc.aio.ServicerContext) -> Any:
            started = time.perf_counter()
            outcome = Outcome(context)
            structlog.contextvars.bind_contextvars(rpc=method)
            try:
                with outcome:
                    return await behavior(request, context)
            finally:
                elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
                log.info("rpc", code=outcome.code.name, duration_ms=elapsed_ms)

        return logged
