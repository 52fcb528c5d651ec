"""Signing in: a login name and a password give an access token (shop_grpc.tokens).

What a reviewer looks for, and where it is:

- **No hint of which part was wrong.** An unknown login and a wrong password are the same
  Unauthenticated, with the same message (OWASP Authentication Cheat Sheet, "Authentication
  and error messages").
- **The same time either way.** An unknown login is checked against a stand-in hash of the
  same scrypt cost, so the answer takes as long as a wrong password for a real account; the
  hash comparison itself is constant-time (domain.passwords).
- **Repeated failures slow down**, per login name (an account's username and its e-mail
  are counted apart: counting them together would make an e-mail's throttling say which
  account it belongs to, while a name no account has is counted like any other) and per
  caller (the client's address: see entrypoints.grpc.caller_address): RESOURCE_EXHAUSTED
  with how long to wait (domain.throttle). A throttled try is refused before its password
  is looked at, so it teaches nothing; tries for one name take turns, so a burst of guesses
  cannot all pass the check at once. Whoever knows a customer's login name can keep that
  name waiting (up to 15 minutes at a time, for as long as they keep failing): the price of
  slowing guesses per account, which OWASP's cheat sheet accepts over locking accounts.
- Neither the login name nor the password is logged; the user id of a success is.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import structlog

from shop_grpc import tokens
from shop_grpc.errors import FailedPrecondition, ResourceExhausted, Unauthenticated
from shop_user.domain import passwords
from shop_user.domain.throttle import FailureThrottle, Limit
from shop_user.service_layer import metrics
from shop_user.service_layer.unit_of_work import UnitOfWorkFactory

log = structlog.get_logger(__name__)

WRONG = "wrong login or password"
NAME_LIMIT = Limit(free_failures=5, window_seconds=900)
"""Five free failures per login name in 15 minutes, then 1 s, 2 s, 4 s … up to 15 minutes."""
CALLER_LIMIT = Limit(free_failures=50, window_seconds=900)
"""One client address may sign in to many accounts (a household, an office behind one
address), so more."""


@dataclass
class Throttles:
    names: FailureThrottle
    callers: FailureThrottle
    _turns: dict[str, tuple[asyncio.Lock, int]] = field(default_factory=dict)

    @classmethod
    def default(cls) -> Throttles:
        return cls(FailureThrottle(NAME_LIMIT), FailureThrottle(CALLER_LIMIT))

    @contextlib.asynccontextmanager
    async def turn(self, account: str) -> AsyncIterator[None]:
        """One try at a time per login name: guesses sent all at once would otherwise all be
        checked before the first failure was counted, and slip past the limit together."""
        lock, waiting = self._turns.get(account, (asyncio.Lock(), 0))
        self._turns[account] = (lock, waiting + 1)
        try:
            async with lock:
                yield
        finally:
            lock, waiting = self._turns[account]
            if waiting == 1:
                del self._turns[account]
            else:
                self._turns[account] = (lock, waiting - 1)


@dataclass(frozen=True)
class SignedIn:
    user_id: str
    token: tokens.Issued


async def login(
    uow: UnitOfWorkFactory,
    keys: tokens.KeyDirectory,
    throttles: Throttles,
    login_name: str,
    password: str,
    caller: str,
) -> SignedIn:
    """An access token for the user `login_name` (username or email) names, if `password`
    is theirs. `caller` identifies where the try came from (its address).

    Raises ResourceExhausted while the account or the caller must wait, Unauthenticated for
    wrong credentials, FailedPrecondition (SIGNING_KEY_MISSING) when no key can sign.
    """
    name = login_name.lower()
    async with throttles.turn(name):
        _check_throttles(throttles, name, caller)
        async with uow(readonly=True) as tx:
            found = await tx.users.credentials(name)
        stored = found[1] if found else passwords.unknown_account_hash()
        matches = await passwords.verify_password_async(password, stored)
        if found is None or not matches:
            throttles.names.failed(name)
            throttles.callers.failed(caller)
            log.info("sign-in refused")
            metrics.sign_in(metrics.REFUSED)
            raise Unauthenticated(WRONG)
        throttles.names.succeeded(name)
    user_id = found[0]
    try:
        issued = tokens.issue(keys.ring(), user_id)
    except tokens.NoSigningKey:
        log.error("no signing key: nobody can sign in", directory=str(keys.directory))
        raise FailedPrecondition(
            "sign-in is not available: the service has no signing key",
            reason="SIGNING_KEY_MISSING",
        ) from None
    log.info("signed in", user_id=user_id, token_id=issued.token_id, kid=issued.kid)
    metrics.sign_in(metrics.SIGNED_IN)
    return SignedIn(user_id, issued)


def _check_throttles(throttles: Throttles, name: str, caller: str) -> None:
    for scope, wait in (
        ("login name", throttles.names.wait_seconds(name)),
        ("caller", throttles.callers.wait_seconds(caller)),
    ):
        if wait > 0:
            log.warning("sign-in throttled", scope=scope, wait_seconds=round(wait, 1))
            metrics.sign_in(metrics.THROTTLED)
            raise ResourceExhausted(
                f"too many failed sign-ins; try again in {wait:.0f} s",
                wait,
                reason="TOO_MANY_FAILED_SIGN_INS",
            )
