"""Binds the method to the log context and writes one line per finished call."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import grpc
import structlog

from shop_grpc.interceptors._wrap import intercept

log = structlog.get_logger("shop_grpc.rpc")

# Probes and tooling would drown the log; their outcome is visible elsewhere.
QUIET_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


@asynccontextmanager
async def _log_call(method: str, context: grpc.aio.ServicerContext) -> AsyncIterator[None]:
    started = time.perf_counter()
    code = grpc.StatusCode.OK
    with structlog.contextvars.bound_contextvars(rpc=method):
        try:
            yield
        except grpc.aio.AbortError:
            code = context.code() or grpc.StatusCode.UNKNOWN
            raise
        except BaseException:
            code = grpc.StatusCode.CANCELLED if context.cancelled() else grpc.StatusCode.UNKNOWN
            raise
        finally:
            if not method.startswith(QUIET_PREFIXES):
                elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
                log.info("rpc", code=_name(code), duration_ms=elapsed_ms)


def _name(code: grpc.StatusCode | int) -> str:
    if isinstance(code, grpc.StatusCode):
        return str(code.name)
    return next((c.name for c in grpc.StatusCode if c.value[0] == code), str(code))


class RequestLogging(grpc.aio.ServerInterceptor):
    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        return await intercept(continuation, handler_call_details, _log_call)
