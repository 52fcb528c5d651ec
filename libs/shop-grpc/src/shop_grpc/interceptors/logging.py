"""Binds the method to the log context and writes one line per finished call.

The line's ``code`` is the status the caller receives (shop_grpc.outcome): CANCELLED
when the client cancelled, DEADLINE_EXCEEDED once the deadline passed.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import grpc
import structlog

from shop_grpc.interceptors._wrap import AroundEachCall
from shop_grpc.outcome import Outcome

log = structlog.get_logger("shop_grpc.rpc")

# Probes and tooling would drown the log; their outcome is visible elsewhere.
QUIET_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


@asynccontextmanager
async def _log_call(method: str, context: grpc.aio.ServicerContext) -> AsyncIterator[None]:
    started = time.perf_counter()
    outcome = Outcome(context)
    with structlog.contextvars.bound_contextvars(rpc=method):
        try:
            with outcome:
                yield
        finally:
            if not method.startswith(QUIET_PREFIXES):
                elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
                log.info("rpc", code=outcome.code.name, duration_ms=elapsed_ms)


class RequestLogging(AroundEachCall):
    def around(
        self, method: str, context: grpc.aio.ServicerContext
    ) -> AbstractAsyncContextManager[None]:
        return _log_call(method, context)
