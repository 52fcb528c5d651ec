"""Wrap any of the four kinds of handler with one piece of around-advice."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import grpc

# Builds the context manager that runs around one call: (method, context) -> cm
Around = Callable[[str, grpc.aio.ServicerContext], AbstractAsyncContextManager[None]]

_FACTORIES = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


def behavior_of(handler: grpc.RpcMethodHandler) -> Callable[..., Any]:
    behavior: Callable[..., Any] = (
        handler.unary_unary or handler.unary_stream or handler.stream_unary or handler.stream_stream
    )
    return behavior


def with_behavior(
    handler: grpc.RpcMethodHandler, behavior: Callable[..., Any]
) -> grpc.RpcMethodHandler:
    """`handler` of the same kind and (de)serializers, running `behavior` instead."""
    factory = _FACTORIES[(handler.request_streaming, handler.response_streaming)]
    rebuilt: grpc.RpcMethodHandler = factory(
        behavior,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )
    return rebuilt


def wrap(handler: grpc.RpcMethodHandler, method: str, around: Around) -> grpc.RpcMethodHandler:
    behavior = behavior_of(handler)
    if inspect.isasyncgenfunction(behavior):

        async def streaming(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            async with around(method, context):
                async for response in behavior(request, context):
                    yield response

        return with_behavior(handler, streaming)

    async def single(request: Any, context: grpc.aio.ServicerContext) -> Any:
        async with around(method, context):
            result = behavior(request, context)
            return await result if isinstance(result, Awaitable) else result

    return with_behavior(handler, single)


async def intercept(
    continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]],
    details: grpc.HandlerCallDetails,
    around: Around,
) -> grpc.RpcMethodHandler | None:
    handler = await continuation(details)
    if handler is None:
        return None
    return wrap(handler, details.method, around)
