"""Signing in: a login name and a password give an access token (shop_grpc.tokens).

What a reviewer looks for, and where it is:

- **No hint of which part was wrong.** An unknown login and a wrong password are the same
  Unauthenticated, with the same message (OWASP Authentication Cheat Sheet, "Authentication
  and error messages").
- **The same time either way.** An unknown login is checked against a stand-in hash of the
  same scrypt cost, so the answer takes as long as a wrong password for a real account; the
  hash comparison itself is constant-time (domain.passwords).
- **Repeated failures slow down**, per account (its username and e-mail counted together;
  a name no account has is counted alike, so the limit says nothing about existence) and per
  caller (its address): RESOURCE_EXHAUSTED with how long to wait (domain.throttle). A
  throttled try is refused before its password is looked at, so it teaches nothing; tries for
  one account take turns, so a burst of guesses cannot all pass the check at once.
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
ACCOUNT_LIMIT = Limit(free_failures=5, window_seconds=900)
"""Five free failures per account in 15 minutes, then 1 s, 2 s, 4 s … up to 15 minutes."""
CALLER_LIMIT = Limit(free_failures=50, window_seconds=900)
"""A caller may mistype for many accounts (a gateway carries many customers), so more."""


@dataclass
class Throttles:
    accounts: FailureThrottle
    callers: FailureThrottle
    _turns: dict[str, tuple[asyncio.Lock, int]] = field(default_factory=dict)

    @classmethod
    def default(cls) -> Throttles:
        return cls(FailureThrottle(ACCOUNT_LIMIT), FailureThrottle(CALLER_LIMIT))

    @contextlib.asynccontextmanager
    async def turn(self, account: str) -> AsyncIterator[None]:
        """One try at a time per account: guesses sent all at once would otherwise all be
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
        async with uow(readonly=True) as tx:
            found = await tx.users.credentials(name)
        # An account's username and e-mail share one count; a name no account has, its own.
        account = f"user:{found[0]}" if found else f"name:{name}"
        _check_throttles(throttles, account, caller)
        stored = found[1] if found else passwords.unknown_account_hash()
        matches = await passwords.verify_password_async(password, stored)
        if found is None or not matches:
            throttles.accounts.failed(account)
            throttles.callers.failed(caller)
            log.info("sign-in refused")
            metrics.sign_in(metrics.REFUSED)
            raise Unauthenticated(WRONG)
        throttles.accounts.succeeded(account)
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


def _check_throttles(throttles: Throttles, account: str, caller: str) -> None:
    for scope, wait in (
        ("account", throttles.accounts.wait_seconds(account)),
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
