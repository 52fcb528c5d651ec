"""Advice around any of the four kinds of handler, built once per method, composed once.

A handler that yields its responses (an async generator) is first turned into one that
writes them with ``context.write()``. Left a generator, a stream cancelled while a
response is being sent is abandoned by grpc.aio and closed later from another task: the
advice around it would run after the call had ended, in a context that is not the call's
(OpenTelemetry's "Failed to detach context", opentelemetry-python-contrib#2357). Written
out, every call runs start to end in its own task: a cancellation reaches the advice as
CancelledError, innermost first, and the generator is closed right there.

Each call runs in a task of its own, with its own copy of the context: what advice binds
(the deadline, log values, the current span) lasts until the call ends and needs no reset.

Cost per call: grpc.aio awaits every interceptor of a server on every call, so the runtime
installs one, ``Chain``, which builds each method's handler through all of its wrappings
once and hands the same handler back afterwards. Per call, each piece of advice is then one
coroutine around the next: no context manager, no async generator.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from contextlib import aclosing
from typing import Any

import grpc

# What a handler runs: (request or request iterator, context) -> awaitable answer.
Behavior = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]

_FACTORIES = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


def behavior_of(handler: grpc.RpcMethodHandler) -> Behavior:
    """What `handler` runs, as a coroutine function that writes any stream it answers with."""
    behavior = (
        handler.unary_unary or handler.unary_stream or handler.stream_unary or handler.stream_stream
    )
    if inspect.isasyncgenfunction(behavior):
        return _written(behavior)
    if inspect.iscoroutinefunction(behavior):
        return behavior  # type: ignore[no-any-return]
    return _awaited(behavior)


def _written(responses: Callable[..., AsyncGenerator[Any, None]]) -> Behavior:
    async def write(request: Any, context: grpc.aio.ServicerContext) -> None:
        async with aclosing(responses(request, context)) as stream:
            async for response in stream:
                await context.write(response)

    return write


def _awaited(function: Callable[..., Any]) -> Behavior:
    """A plain function's answer, or the awaitable it returned, awaited."""

    async def answer(request: Any, context: grpc.aio.ServicerContext) -> Any:
        result = function(request, context)
        return await result if inspect.isawaitable(result) else result

    return answer


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


class HandlerWrapping:
    """One layer of the chain: replaces a method's handler with one built around it."""

    def applies_to(self, method: str) -> bool:
        """Whether calls of `method` get the built handler (the others pass through)."""
        return True

    def build(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        raise NotImplementedError


class AroundEachCall(HandlerWrapping):
    """Advice around every call of a method: `advise` builds it once per method."""

    def advise(self, method: str, behavior: Behavior) -> Behavior:
        """A coroutine function that does this layer's work around awaiting `behavior`."""
        raise NotImplementedError

    def build(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        return with_behavior(handler, self.advise(method, behavior_of(handler)))


class Chain(grpc.aio.ServerInterceptor):
    """Several wrappings as one interceptor, `wrappings[0]` outermost.

    The handler the services give for a method is the same object on every call; what is
    built around it is kept per method (as many as the services have) and rebuilt only if
    the services give another. An unknown method (no handler) passes through.
    """

    def __init__(self, wrappings: Sequence[HandlerWrapping]) -> None:
        self.wrappings = tuple(wrappings)
        self._built: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        kept = self._built.get(method)
        if kept is not None and kept[0] is handler:
            return kept[1]
        wrapped = handler
        for wrapping in reversed(self.wrappings):
            if wrapping.applies_to(method):
                wrapped = wrapping.build(method, wrapped)
        self._built[method] = (handler, wrapped)
        return wrapped
