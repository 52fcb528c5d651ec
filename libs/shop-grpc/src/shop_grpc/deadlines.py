"""A deadline is a budget: every outbound call spends what is left of the inbound call's.

grpc Python propagates no deadline by itself. The server side
(``interceptors.deadlines.DeadlineBinding``) binds when the inbound call must
end into a contextvar: the caller's deadline, or, when the caller set none,
now plus the service's default budget. The client side (``client_interceptors``
below) gives every outbound call made from that context

    timeout = min(explicit timeout if any, remaining - HOP_MARGIN_SECONDS)

and fails it with DEADLINE_EXCEEDED, without sending it, once nothing is left.
Work done outside any inbound call (a recovery loop), and calls made from a
streaming call that arrived without a deadline (a stream may stay open for
hours), give each outbound call the default budget of its own.

Only per-call timeouts are used: the service config's ``timeout`` field gives
wrong deadlines in grpcio (grpc issues 34547 and 40633).

Cancellation needs no extra code: outbound calls are awaited in the handler's
task, grpc.aio cancels that task when the inbound call is cancelled, and an
awaited call is cancelled with the task awaiting it. Background tasks created
by a handler copy its context, so they inherit the caller's deadline, not its
cancellation.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import grpc

from shop_grpc import call_details

HOP_MARGIN_SECONDS = 0.03
"""Kept back from the remaining budget for the hop to the next service. It also absorbs
grpc core's clock: a server may see up to ~10 ms more than the timeout its client asked for."""

_deadline: ContextVar[float | None] = ContextVar("shop_deadline", default=None)
"""When the current inbound call must end, on the time.monotonic() clock."""


def remaining() -> float | None:
    """Seconds left in the current call's budget; None outside any budget."""
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()


def bind(seconds: float | None) -> None:
    """Starts a budget of `seconds` for the current context (None: no budget)."""
    _deadline.set(None if seconds is None else time.monotonic() + seconds)


@contextmanager
def budget(seconds: float | None) -> Iterator[None]:
    """Runs the block with a budget of `seconds`, then restores the previous one."""
    token = _deadline.set(None if seconds is None else time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


class BudgetSpent(Exception):
    """Nothing is left of the budget; the call must not be sent."""


def outbound_timeout(explicit: float | None, default_seconds: float | None) -> float | None:
    """The timeout an outbound call gets; raises BudgetSpent when none is left."""
    left = remaining()
    if left is None:
        candidates = [explicit, default_seconds]
    else:
        left -= HOP_MARGIN_SECONDS
        if left <= 0:
            raise BudgetSpent()
        candidates = [explicit, left]
    chosen = [c for c in candidates if c is not None]
    return min(chosen) if chosen else None


def _spent_error() -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(
        code=grpc.StatusCode.DEADLINE_EXCEEDED,
        initial_metadata=grpc.aio.Metadata(),
        trailing_metadata=grpc.aio.Metadata(),
        details="deadline exceeded: the caller's budget was spent before this call was sent",
    )


def _propagated(default_seconds: float | None) -> Callable[[Any], Any]:
    def rewrite(details: Any) -> Any:
        try:
            timeout = outbound_timeout(details.timeout, default_seconds)
        except BudgetSpent:
            raise _spent_error() from None
        return details._replace(timeout=timeout)

    return rewrite


def client_interceptors(default_seconds: float | None) -> list[grpc.aio.ClientInterceptor]:
    """Each call's timeout rewritten, for every kind of call."""
    return call_details.rewriting(_propagated(default_seconds))
