"""Failed sign-ins slow down what they come from: an account, or a caller.

OWASP's Authentication Cheat Sheet ("Protect against automated attacks"): a few failures are
free (people mistype); after that each further failure makes the key wait twice as long as
the one before, up to a cap, so guessing a password online costs hours, not seconds, while
the account's owner is never locked out for good. A success forgets the key's failures.
Failures older than the window are forgotten too.

The count is per replica and in memory: a restart forgets it, and an attacker spread over N
replicas gets N times the attempts — still doubling waits on each. The table holds a bounded
number of keys; one that fills it with new keys pushes the oldest out, which the per-caller
count (one of the keys it fills) slows down in turn.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    free_failures: int
    """Failures within the window that cost no wait."""
    window_seconds: float
    """Failures older than this (since the first of a run) are forgotten."""
    first_wait_seconds: float = 1.0
    """The wait after the first failure beyond the free ones; doubling after each next one."""
    max_wait_seconds: float = 900.0
    """The longest wait, 15 minutes."""


@dataclass
class _Failures:
    count: int
    first: float
    blocked_until: float


class FailureThrottle:
    """Failure counts by key (an account's login name, a caller's address), at most
    `max_keys` of them: the oldest is forgotten first, so memory stays bounded."""

    def __init__(
        self,
        limit: Limit,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self.limit = limit
        self.clock = clock
        self.max_keys = max_keys
        self._keys: OrderedDict[str, _Failures] = OrderedDict()

    def wait_seconds(self, key: str) -> float:
        """How long `key` must wait before its next try counts; 0 when it may try now."""
        failures = self._current(key)
        return 0.0 if failures is None else max(failures.blocked_until - self.clock(), 0.0)

    def failed(self, key: str) -> None:
        now = self.clock()
        failures = self._current(key) or _Failures(0, now, now)
        failures.count += 1
        beyond = failures.count - self.limit.free_failures
        if beyond > 0:
            wait = self.limit.first_wait_seconds * 2 ** min(beyond - 1, 32)
            failures.blocked_until = now + min(wait, self.limit.max_wait_seconds)
        self._keys[key] = failures
        self._keys.move_to_end(key)
        while len(self._keys) > self.max_keys:
            self._keys.popitem(last=False)

    def succeeded(self, key: str) -> None:
        self._keys.pop(key, None)

    def _current(self, key: str) -> _Failures | None:
        failures = self._keys.get(key)
        if failures is None:
            return None
        now = self.clock()
        if now - failures.first > self.limit.window_seconds and now >= failures.blocked_until:
            del self._keys[key]
            return None
        return failures
