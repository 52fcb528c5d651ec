"""The status a served call ends with, as its caller receives it.

A handler does not always know how its call ended. When the client cancels, or the
deadline passes, grpc.aio cancels the handler's task and says no more:
``context.cancelled()`` stays False, because it reports only a CANCELLED status the
server set itself. And a handler that answers after the deadline believes it answered,
while gRPC has already ended the call with DEADLINE_EXCEEDED on both sides. The per-call
log line and the server span both take the status from ``Outcome``.

One case stays out of reach: grpc.aio ends a request stream the same way whether the
client closed it or cancelled the call, so a handler that returns at the end of its
request stream is recorded with what it returned.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

import grpc

from shop_grpc.deadlines import HOP_MARGIN_SECONDS


class Outcome:
    """Around a handler: ``with Outcome(context) as outcome: ...``; then ``outcome.code``.

    ``code`` is the status the caller receives: the handler's own (returned, set with
    ``set_code`` or aborted with), UNKNOWN for an exception grpc would answer with it,
    CANCELLED when the handler was cancelled, and DEADLINE_EXCEEDED in any case once the
    deadline has passed.
    """

    def __init__(self, context: grpc.aio.ServicerContext) -> None:
        self.context = context
        self.code = grpc.StatusCode.OK

    def __enter__(self) -> Outcome:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.code = received(self.context, self._answered(kind))

    def _answered(self, kind: type[BaseException] | None) -> grpc.StatusCode:
        if kind is None:
            return _status(self.context.code()) or grpc.StatusCode.OK
        if issubclass(kind, grpc.aio.AbortError):
            return _status(self.context.code()) or grpc.StatusCode.UNKNOWN
        if issubclass(kind, asyncio.CancelledError):
            # Before the deadline, only the client (cancelling, or its connection going) or
            # this server's own stop past its grace period interrupts a call.
            return grpc.StatusCode.CANCELLED
        return grpc.StatusCode.UNKNOWN


def expired(context: grpc.aio.ServicerContext) -> bool:
    """True once the call's deadline has passed, or is within HOP_MARGIN_SECONDS of it.

    The deadline travels as a timeout (``grpc-timeout``), so the server's copy ends a few
    milliseconds after the client's: a client that gives up at its deadline reaches the
    server as a cancellation just before the server's. Never true without a deadline.
    """
    left = context.time_remaining()
    return left is not None and left <= HOP_MARGIN_SECONDS


def received(context: grpc.aio.ServicerContext, answered: grpc.StatusCode) -> grpc.StatusCode:
    """`answered` as the caller receives it: DEADLINE_EXCEEDED once the deadline has passed
    (gRPC ends the call at its deadline on both sides, whatever the handler answers)."""
    return grpc.StatusCode.DEADLINE_EXCEEDED if expired(context) else answered


def _status(code: object) -> grpc.StatusCode | None:
    # context.code() gives back what the handler passed: a StatusCode, an int, or nothing.
    if isinstance(code, grpc.StatusCode):
        return code
    return _BY_NUMBER.get(code) if isinstance(code, int) else None


_BY_NUMBER = {c.value[0]: c for c in grpc.StatusCode}
