"""Checks every request message against the rules declared in its .proto, before the handler.

A unary request is checked whole; a streamed one message by message as the handler reads it,
with violations named ``requests[i].<field>`` (i counts from 0), so a bad message never reaches
the handler. See shop_grpc.validation.

A request that does not even parse (corrupt bytes, a string field that is not UTF-8) is
INVALID_ARGUMENT on ``request`` too: grpc would otherwise answer UNKNOWN with the parser's
exception, before any interceptor could see it.

A client stream (many requests, one response) is read to its end before a bad message is
refused, and the refusal names the bad fields of every message. Besides reporting everything
at once, that keeps the client from writing to a call the server has already ended: grpcio's
client then reports INTERNAL "Internal error from Core" in place of the server's status
(grpc/grpc#36066). A bidirectional stream cannot wait like that — its client may be waiting for
an answer — so it is refused at the first bad message, and its clients write in lock step.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import DecodeError, Message

from shop_grpc.errors import FieldViolation, InvalidArgument
from shop_grpc.interceptors._wrap import HandlerWrapping, behavior_of, with_behavior
from shop_grpc.validation import check_message, field_violations


@dataclass(frozen=True)
class _Unparsable:
    """Stands in for a request message whose bytes did not parse."""

    type_name: str
    reason: str


def _parsing(parse: Callable[[bytes], object] | None) -> Callable[[bytes], object] | None:
    if parse is None:
        return None

    def tolerant(data: bytes) -> object:
        try:
            return parse(data)
        except DecodeError as error:
            # The parser names the message type first: keep the part after its colon.
            reason = str(error).rsplit(": ", 1)[-1]
            return _Unparsable(getattr(parse, "__qualname__", "message"), reason)

    return tolerant


def _check(request: object, prefix: str = "") -> None:
    if isinstance(request, _Unparsable):
        where = prefix.rstrip(".") or "request"
        raise InvalidArgument([FieldViolation(where, f"does not parse: {request.reason}")])
    # A handler without a message type (raw bytes) has nothing to check against.
    if isinstance(request, Message):
        check_message(request, prefix)


# How many more messages a refused client stream is read for, so a runaway stream still ends.
DRAIN_LIMIT = 10_000


async def _checked(requests: AsyncIterator[object]) -> AsyncIterator[object]:
    index = 0
    async for request in requests:
        _check(request, f"requests[{index}].")
        index += 1
        yield request


async def _checked_to_the_end(requests: AsyncIterator[object]) -> AsyncIterator[object]:
    index = 0
    async for request in requests:
        try:
            _check(request, f"requests[{index}].")
        except InvalidArgument as refused:
            raise InvalidArgument(refused.violations + await _rest(requests, index + 1)) from None
        index += 1
        yield request


async def _rest(requests: AsyncIterator[object], index: int) -> list[FieldViolation]:
    """The violations of the stream's remaining messages, reading at most DRAIN_LIMIT."""
    found: list[FieldViolation] = []
    async for request in requests:
        if isinstance(request, _Unparsable):
            found.append(FieldViolation(f"requests[{index}]", f"does not parse: {request.reason}"))
        elif isinstance(request, Message):
            found += field_violations(request, f"requests[{index}].")
        index += 1
        if index > DRAIN_LIMIT:
            break
    return found


def _validating(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    behavior = behavior_of(handler)

    def checked(request: Any) -> Any:
        if handler.request_streaming and handler.response_streaming:
            return _checked(request)
        if handler.request_streaming:
            return _checked_to_the_end(request)
        _check(request)
        return request

    async def validated(request: Any, context: grpc.aio.ServicerContext) -> Any:
        return await behavior(checked(request), context)

    return with_behavior(
        handler, validated, request_deserializer=_parsing(handler.request_deserializer)
    )


class RequestValidation(HandlerWrapping):
    def build(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        return _validating(handler)
