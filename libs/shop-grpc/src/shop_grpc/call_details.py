"""Client interceptors that change each outbound call's details (timeout, metadata) before it
is sent, for every kind of call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

Continuation = Callable[[Any, Any], Any]
Rewrite = Callable[[Any], Any]
"""A call's ``grpc.aio.ClientCallDetails`` -> the details to send it with."""


class _Rewriting:
    def __init__(self, rewrite: Rewrite) -> None:
        self.rewrite = rewrite


# grpc ships no type information, so mypy sees these base classes as Any.
class _UnaryUnary(_Rewriting, grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_unary(
        self, continuation: Continuation, client_call_details: Any, request: Any
    ) -> Any:
        return await continuation(self.rewrite(client_call_details), request)


class _UnaryStream(_Rewriting, grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_stream(
        self, continuation: Continuation, client_call_details: Any, request: Any
    ) -> Any:
        return await continuation(self.rewrite(client_call_details), request)


class _StreamUnary(_Rewriting, grpc.aio.StreamUnaryClientInterceptor):  # type: ignore[misc]
    async def intercept_stream_unary(
        self, continuation: Continuation, client_call_details: Any, request_iterator: Any
    ) -> Any:
        return await continuation(self.rewrite(client_call_details), request_iterator)


class _StreamStream(_Rewriting, grpc.aio.StreamStreamClientInterceptor):  # type: ignore[misc]
    async def intercept_stream_stream(
        self, continuation: Continuation, client_call_details: Any, request_iterator: Any
    ) -> Any:
        return await continuation(self.rewrite(client_call_details), request_iterator)


def rewriting(rewrite: Rewrite) -> list[grpc.aio.ClientInterceptor]:
    """One interceptor per kind of call (a grpc.aio channel files each under one kind only),
    each sending its calls with the details `rewrite` makes of theirs."""
    return [kind(rewrite) for kind in (_UnaryUnary, _UnaryStream, _StreamUnary, _StreamStream)]
