"""Wrap any of the four kinds of handler with one piece of around-advice.

A handler that yields its responses (an async generator) is first turned into one that
writes them with ``context.write()``. Left a generator, a stream cancelled while a
response is being sent is abandoned by grpc.aio and closed later from another task: the
advice around it would run after the call had ended, in a context that is not the call's
(OpenTelemetry's "Failed to detach context", opentelemetry-python-contrib#2357). Written
out, every call runs start to end in its own task: a cancellation reaches the advice as
CancelledError, innermost first, and the generator is closed right there.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, aclosing
from typing import Any

import grpc

# Builds the context manager that runs around one call: (method, context) -> cm
Around = Callable[[str, grpc.aio.ServicerContext], AbstractAsyncContextManager[None]]
Behavior = Callable[[Any, grpc.aio.ServicerContext], Any]

_FACTORIES = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


def behavior_of(handler: grpc.RpcMethodHandler) -> Behavior:
    """What `handler` runs, as a coroutine function that writes any stream it answers with."""
    behavior: Behavior = (
        handler.unary_unary or handler.unary_stream or handler.stream_unary or handler.stream_stream
    )
    if inspect.isasyncgenfunction(behavior):
        return _written(behavior)
    return behavior


def _written(responses: Callable[..., AsyncGenerator[Any, None]]) -> Behavior:
    async def write(request: Any, context: grpc.aio.ServicerContext) -> None:
        async with aclosing(responses(request, context)) as stream:
            async for response in stream:
                await context.write(response)

    return write


def with_behavior(
    handler: grpc.RpcMethodHandler,
    behavior: Behavior,
    request_deserializer: Callable[[bytes], Any] | None = None,
) -> grpc.RpcMethodHandler:
    """`handler` of the same kind and (de)serializers, running `behavior` instead (and
    parsing requests with `request_deserializer` when given)."""
    factory = _FACTORIES[(handler.request_streaming, handler.response_streaming)]
    rebuilt: grpc.RpcMethodHandler = factory(
        behavior,
        request_deserializer=request_deserializer or handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )
    return rebuilt


def wrap(handler: grpc.RpcMethodHandler, method: str, around: Around) -> grpc.RpcMethodHandler:
    behavior = behavior_of(handler)

    async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> Any:
        async with around(method, context):
            result = behavior(request, context)
            return await result if isinstance(result, Awaitable) else result

    return with_behavior(handler, wrapped)


class HandlerWrapping(grpc.aio.ServerInterceptor):
    """A server interceptor that replaces a method's handler with one built around it.

    grpc asks every interceptor for the method's handler on every call. The handler the chain
    below returns for a method is the same object each time (each interceptor keeps what it
    built), so what is built around it is kept too, per method, and reused instead of made
    anew for each call. Only methods with a handler are kept: as many as the services have.
    """

    def __init__(self) -> None:
        self._built: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    def applies_to(self, method: str) -> bool:
        """Whether calls of `method` get the built handler (the others pass through)."""
        return True

    def build(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        raise NotImplementedError

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or not self.applies_to(method):
            return handler
        kept = self._built.get(method)
        if kept is not None and kept[0] is handler:
            return kept[1]
        built = self.build(method, handler)
        self._built[method] = (handler, built)
        return built


class AroundEachCall(HandlerWrapping):
    """Runs `around(method, context)`, an async context manager, around every call."""

    def around(
        self, method: str, context: grpc.aio.ServicerContext
    ) -> AbstractAsyncContextManager[None]:
        raise NotImplementedError

    def build(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        return wrap(handler, method, self.around)
