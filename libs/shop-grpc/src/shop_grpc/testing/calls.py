"""Calls that end early: the handlers they reach and how the client ends them.

SHAPES["unary"]             a handler that never answers
SHAPES["server-streaming"]  one that sends FIRST_MESSAGE, then nothing more
await end_early(call, streaming=..., ending="cancel" | "deadline")
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest

FIRST_MESSAGE = b"level 5"
ENDINGS = ("cancel", "deadline")
"""The client cancels the call, or lets its deadline (give it one second) pass."""


async def _no_change_ever() -> None:
    await asyncio.Event().wait()


async def _never_answers(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    await _no_change_ever()
    return b""


async def _one_then_silent(
    request: bytes, context: grpc.aio.ServicerContext
) -> AsyncIterator[bytes]:
    """Like WatchStock: the current level at once, then one message per change."""
    yield FIRST_MESSAGE
    await _no_change_ever()


SHAPES = {
    "unary": grpc.unary_unary_rpc_method_handler(_never_answers),
    "server-streaming": grpc.unary_stream_rpc_method_handler(_one_then_silent),
}


async def end_early(call: grpc.aio.Call, *, streaming: bool, ending: str) -> None:
    """Waits for the call to be under way, then lets it end as `ending` says; asserts the
    client saw it end that way."""
    if streaming:
        assert await call.read() == FIRST_MESSAGE
    else:
        await asyncio.sleep(0.2)
    if ending == "cancel":
        call.cancel()
    with pytest.raises((asyncio.CancelledError, grpc.aio.AioRpcError)) as ended:
        await (call.read() if streaming else call)
    if ending == "deadline":
        assert ended.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
