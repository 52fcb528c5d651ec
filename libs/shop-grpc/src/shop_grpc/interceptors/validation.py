"""Checks every request message against the rules declared in its .proto, before the handler.

A unary request is checked whole; a streamed one message by message as the handler reads it,
with violations named ``requests[i].<field>`` (i counts from 0), so a bad message in a stream
ends the call with INVALID_ARGUMENT before the handler sees it. See shop_grpc.validation.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import Message

from shop_grpc.interceptors._wrap import behavior_of, with_behavior
from shop_grpc.validation import check_message


def _check(request: object, prefix: str = "") -> None:
    # A handler without a message type (raw bytes) has nothing to check against.
    if isinstance(request, Message):
        check_message(request, prefix)


async def _checked(requests: AsyncIterator[object]) -> AsyncIterator[object]:
    index = 0
    async for request in requests:
        _check(request, f"requests[{index}].")
        index += 1
        yield request


def _validating(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    behavior = behavior_of(handler)

    def checked(request: Any) -> Any:
        if handler.request_streaming:
            return _checked(request)
        _check(request)
        return request

    if inspect.isasyncgenfunction(behavior):

        async def streaming(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            async for response in behavior(checked(request), context):
                yield response

        return with_behavior(handler, streaming)

    async def single(request: Any, context: grpc.aio.ServicerContext) -> Any:
        result = behavior(checked(request), context)
        return await result if isinstance(result, Awaitable) else result

    return with_behavior(handler, single)


class RequestValidation(grpc.aio.ServerInterceptor):
    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        return None if handler is None else _validating(handler)
