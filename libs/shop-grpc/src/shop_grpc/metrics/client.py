"""Counts and times every call a service makes (the ``grpc_client_*`` families of
shop_grpc.metrics.rpc), with the status the caller received: Canceled when the caller was
cancelled (the call is cancelled with it), the call's own code otherwise, DeadlineExceeded
included.

Health checks and reflection are not counted, as on the server. Unary calls (every call
between the services) count their one message each way. The streaming
shapes count the call and its end, from the call's done callback; their messages are not
counted on this side.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import grpc

from shop_grpc import metrics
from shop_grpc.interceptors.logging import QUIET_PREFIXES
from shop_grpc.metrics.rpc import (
    BIDI_STREAM,
    CLIENT,
    CLIENT_STREAM,
    SERVER_STREAM,
    UNARY,
    MethodMetrics,
)


class _Series:
    """Each method's series of one call shape, made as the method is first called."""

    def __init__(self, grpc_type: str) -> None:
        self.grpc_type = grpc_type
        self._by_method: dict[str, MethodMetrics] = {}

    def of(self, details: Any) -> MethodMetrics | None:
        """The method's series; None for health checks and reflection, which are not counted."""
        method = details.method
        # The method may come as bytes (grpc#31092).
        name = method.decode() if isinstance(method, bytes) else str(method)
        series = self._by_method.get(name)
        if series is None and not name.startswith(QUIET_PREFIXES):
            series = self._by_method[name] = MethodMetrics(CLIENT, self.grpc_type, name)
        return series


class UnaryClientMetrics(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    def __init__(self) -> None:
        self._series = _Series(UNARY)

    async def intercept_unary_unary(
        self, continuation: Callable[[Any, Any], Any], details: Any, request: Any
    ) -> Any:
        series = self._series.of(details)
        if series is None:
            return await continuation(details, request)
        series.started.inc()
        series.msg_sent.inc()
        started = time.perf_counter()
        call = None
        try:
            call = await continuation(details, request)
            code = await call.code()
        except asyncio.CancelledError:
            if call is not None:
                call.cancel()
            series.finished(grpc.StatusCode.CANCELLED, time.perf_counter() - started)
            raise
        except Exception as error:
            series.finished(_code_of(error), time.perf_counter() - started)
            raise
        series.finished(code, time.perf_counter() - started)
        if code is grpc.StatusCode.OK:
            series.msg_received.inc()
        return call


def _code_of(error: Exception) -> grpc.StatusCode:
    """A failed call's code: the RPC error's, UNKNOWN for anything else (a closed channel)."""
    return error.code() if isinstance(error, grpc.aio.AioRpcError) else grpc.StatusCode.UNKNOWN


class _Streaming:
    """Counts a streaming call as it starts and, from its done callback, as it ends."""

    def __init__(self, grpc_type: str) -> None:
        self._series = _Series(grpc_type)

    async def _counted(self, details: Any, start: Callable[[], Any]) -> Any:
        """`start()`'s call, counted; a call that fails before it starts (the caller's budget
        already spent, say) is counted as started and ended with its code."""
        series = self._series.of(details)
        if series is None:
            return await start()
        series.started.inc()
        started = time.perf_counter()
        try:
            call = await start()
        except Exception as error:
            series.finished(_code_of(error), time.perf_counter() - started)
            raise

        def done(finished: grpc.aio.Call) -> None:
            elapsed = time.perf_counter() - started
            # The status of a finished call is there at once, but only to an awaiting reader.
            task = asyncio.get_running_loop().create_task(_record(series, finished, elapsed))
            _recording.add(task)
            task.add_done_callback(_recording.discard)

        call.add_done_callback(done)
        return call


_recording: set[asyncio.Task[None]] = set()
"""Tasks recording a finished stream's status: held until done, as the loop keeps only weak
references to tasks."""


async def _record(series: MethodMetrics, call: grpc.aio.Call, seconds: float) -> None:
    series.finished(await call.code(), seconds)


class UnaryStreamClientMetrics(_Streaming, grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__(SERVER_STREAM)

    async def intercept_unary_stream(
        self, continuation: Callable[[Any, Any], Any], details: Any, request: Any
    ) -> Any:
        return await self._counted(details, lambda: continuation(details, request))


class StreamUnaryClientMetrics(_Streaming, grpc.aio.StreamUnaryClientInterceptor):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__(CLIENT_STREAM)

    async def intercept_stream_unary(
        self, continuation: Callable[[Any, Any], Any], details: Any, requests: Any
    ) -> Any:
        return await self._counted(details, lambda: continuation(details, requests))


class StreamStreamClientMetrics(_Streaming, grpc.aio.StreamStreamClientInterceptor):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__(BIDI_STREAM)

    async def intercept_stream_stream(
        self, continuation: Callable[[Any, Any], Any], details: Any, requests: Any
    ) -> Any:
        return await self._counted(details, lambda: continuation(details, requests))


def client_interceptors() -> list[grpc.aio.ClientInterceptor]:
    """One interceptor per call shape; none when metrics are off (shop_grpc.metrics)."""
    if not metrics.enabled():
        return []
    return [
        UnaryClientMetrics(),
        UnaryStreamClientMetrics(),
        StreamUnaryClientMetrics(),
        StreamStreamClientMetrics(),
    ]
