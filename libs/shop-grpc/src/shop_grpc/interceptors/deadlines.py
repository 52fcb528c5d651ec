"""Binds the inbound call's deadline for the outbound calls its handler makes.

See shop_grpc.deadlines for the rules. Also keeps a stray CancelledError from
reaching grpc: a handler whose own task was not cancelled but which lets one
escape (a downstream call cancelled under it) would leave its caller waiting
until the caller's deadline, so it is answered with a status instead.
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from shop_grpc import deadlines
from shop_grpc.interceptors._wrap import Behavior, HandlerWrapping, behavior_of, with_behavior


def _binding(budget: float | None, behavior: Behavior) -> Behavior:
    async def bound(request: Any, context: grpc.aio.ServicerContext) -> Any:
        left = context.time_remaining()
        deadlines.bind(budget if left is None else left)
        try:
            return await behavior(request, context)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # the inbound call itself was cancelled: grpc expects this
            code = (
                grpc.StatusCode.DEADLINE_EXCEEDED
                if (deadlines.remaining() or 1.0) <= 0
                else grpc.StatusCode.CANCELLED
            )
            await context.abort(code, "a call this one depended on was cancelled")

    return bound


class DeadlineBinding(HandlerWrapping):
    def __init__(self, default_seconds: float) -> None:
        self.default_seconds = default_seconds

    def build(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        # A stream may stay open for hours: without a caller deadline, each call it
        # makes gets the default budget of its own instead of sharing one.
        streaming = handler.request_streaming or handler.response_streaming
        budget = None if streaming else self.default_seconds
        return with_behavior(handler, _binding(budget, behavior_of(handler)))
