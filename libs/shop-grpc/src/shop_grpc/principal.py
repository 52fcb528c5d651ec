"""Who a call acts for, as the caller check established it: a customer, or anyone.

The caller check (interceptors.identity) binds one ``Caller`` per call, before any handler
runs; entrypoints read it with ``current()`` and hand it to the use cases, which decide what
it may see and do. A call with a customer's access token acts for that customer only,
whatever certificate carried it; a call an operator or a service makes without a token acts
for any customer (the policy table already decided it may call the method at all).
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class Caller:
    identity: str
    """The certificate identity that carried the call (``client``, a service's name), or
    ``unknown`` in plaintext."""
    user_id: str | None = None
    """The customer whose access token the call carried; None when it carried none."""

    @property
    def is_customer(self) -> bool:
        return self.user_id is not None

    def may_act_for(self, user_id: str) -> bool:
        """Whether this caller may see or change what belongs to the user `user_id`."""
        return self.user_id is None or self.user_id == user_id


ANYONE = Caller("unknown")
"""A call no check has bound a caller for: a plaintext server's, or a use case called
directly (tests, background work). Acts for any customer."""

_current: ContextVar[Caller] = ContextVar("shop_caller", default=ANYONE)


def bind(caller: Caller) -> None:
    """Sets the caller for the rest of the call (each call runs in a context of its own)."""
    _current.set(caller)


def current() -> Caller:
    """The caller of the call being handled."""
    return _current.get()
