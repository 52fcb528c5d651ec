"""Counts and times every call served (shop_grpc.metrics.rpc), with the status its caller
receives (shop_grpc.outcome): Canceled when the client cancelled, DeadlineExceeded once the
deadline passed, whatever the handler saw.

Messages are counted as they pass: a request stream's as the handler reads them, a response
stream's as they are written; a unary call's one request as the call starts, its one response
when it ends OK. Health checks and reflection are not counted (see shop_grpc.metrics).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
from prometheus_client import Counter

from shop_grpc.interceptors._wrap import AroundEachCall, Behavior, behavior_of, with_behavior
from shop_grpc.interceptors.logging import QUIET_PREFIXES
from shop_grpc.metrics.rpc import SERVER, MethodMetrics, rpc_type
from shop_grpc.outcome import Outcome


class ServerMetrics(AroundEachCall):
    def applies_to(self, method: str) -> bool:
        return not method.startswith(QUIET_PREFIXES)

    def build(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        series = MethodMetrics(
            SERVER, rpc_type(handler.request_streaming, handler.response_streaming), method
        )
        behavior = behavior_of(handler)
        if handler.request_streaming:
            behavior = _counting_requests(behavior, series.msg_received)
        if handler.response_streaming:
            behavior = _counting_responses(behavior, series.msg_sent)
        return with_behavior(
            handler,
            _measured(
                behavior,
                series,
                unary_request=not handler.request_streaming,
                unary_response=not handler.response_streaming,
            ),
        )


def _measured(
    behavior: Behavior, series: MethodMetrics, *, unary_request: bool, unary_response: bool
) -> Behavior:
    async def measured(request: Any, context: grpc.aio.ServicerContext) -> Any:
        series.started.inc()
        if unary_request:
            series.msg_received.inc()
        started = time.perf_counter()
        outcome = Outcome(context)
        try:
            with outcome:
                return await behavior(request, context)
        finally:
            series.finished(outcome.code, time.perf_counter() - started)
            if unary_response and outcome.code is grpc.StatusCode.OK:
                series.msg_sent.inc()

    return measured


def _counting_requests(behavior: Behavior, received: Counter) -> Behavior:
    async def reading(requests: Any, context: grpc.aio.ServicerContext) -> Any:
        return await behavior(_CountedStream(requests, received), context)

    return reading


def _counting_responses(behavior: Behavior, sent: Counter) -> Behavior:
    async def writing(request: Any, context: grpc.aio.ServicerContext) -> Any:
        return await behavior(request, _CountedWrites(context, sent))

    return writing


class _CountedStream:
    """A request stream that counts each message read from it.

    A class, not an async generator: a generator left open when a call is cancelled would be
    closed later, by the event loop, outside the call (see interceptors._wrap)."""

    def __init__(self, requests: AsyncIterator[Any], received: Counter) -> None:
        self._requests = requests.__aiter__()
        self._received = received

    def __aiter__(self) -> _CountedStream:
        return self

    async def __anext__(self) -> Any:
        message = await self._requests.__anext__()
        self._received.inc()
        return message


class _CountedWrites:
    """The call's context, counting each response written; everything else is the context's."""

    def __init__(self, context: grpc.aio.ServicerContext, sent: Counter) -> None:
        self._context = context
        self._sent = sent

    async def write(self, message: Any) -> None:
        await self._context.write(message)
        self._sent.inc()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)
