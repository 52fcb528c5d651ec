"""The caller check: the certificate identity against shop_grpc.policy, and a customer's
access token on the methods that accept customers, before any handler runs.

For a method the policy opens to customers (registry.CUSTOMER):

- ``authorization: Bearer <token>`` present: the token must verify (shop_grpc.tokens), else
  UNAUTHENTICATED. The call then acts for that customer, whatever certificate carried it.
- no token: an identity the policy names for the method (an operator: the ``client``
  certificate) acts for any customer, and the call's log line says so
  (``acting_for="any customer"``); anyone else is UNAUTHENTICATED.

Any other method: the identity must be named for it, else PERMISSION_DENIED. Callers must come
from the server's namespace in every case. A plaintext server (SHOP_INSECURE=1) has no
identities to check: only tokens are.

The token itself is never logged nor put into a span or a status message; its user id and
``jti`` are (the ``user_id`` and ``token_id`` fields of the call's log line; the user id as the
``enduser.id`` span attribute).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc
import structlog
from opentelemetry import trace

from shop_grpc import policy, principal, status, tokens
from shop_grpc.certs import parse_spiffe_id
from shop_grpc.config import ServerSettings
from shop_grpc.credentials import read_material
from shop_grpc.errors import Unauthenticated
from shop_grpc.interceptors._wrap import AroundEachCall, Behavior
from shop_grpc.principal import Caller

log = structlog.get_logger("shop_grpc.identity")

UNKNOWN = "unknown"
AUTHORIZATION = "authorization"
AUTHORIZATION_BIN = "authorization-bin"
SCHEME = "bearer"
CHALLENGE = "Bearer"
"""RFC 6750 section 3: no credentials were sent, so the challenge names only the scheme."""
INVALID_TOKEN = 'Bearer error="invalid_token"'
NO_TOKEN = "NO_TOKEN"
"""The reason of a call that carries no token to a method only customers' tokens open."""
NEEDS_TOKEN = "this method needs `authorization: Bearer <access token>` (UserService.Login)"


def caller_of(context: grpc.aio.ServicerContext) -> tuple[str, str]:
    """(namespace, identity) from the peer's SPIFFE ID; UNKNOWN for both without one."""
    values = context.auth_context().get("peer_spiffe_id") or [b""]
    parsed = parse_spiffe_id(values[0].decode("utf-8", "replace"))
    return parsed if parsed else (UNKNOWN, UNKNOWN)


def bearer_token(metadata: Sequence[tuple[str, str | bytes]] | None) -> str | None:
    """The token of the call's ``authorization`` metadata (RFC 6750 section 2.1), None when
    there is none. Raises TokenRejected for any other shape: another scheme, no token, the
    key given twice, or given as binary (``authorization-bin``: a credential the check
    would otherwise pass over, acting as the operator for a call that meant a customer)."""
    pairs = list(metadata or ())
    if any(key == AUTHORIZATION_BIN for key, _ in pairs):
        raise tokens.TokenRejected("authorization must be text: `Bearer <access token>`")
    values = [value for key, value in pairs if key == AUTHORIZATION]
    if not values:
        return None
    if len(values) > 1 or not isinstance(values[0], str):
        raise tokens.TokenRejected("the call carries more than one or an unreadable authorization")
    scheme, _, token = values[0].partition(" ")
    if scheme.lower() != SCHEME or not token.strip():
        raise tokens.TokenRejected("authorization must be `Bearer <access token>`")
    return token.strip()


class IdentityCheck(AroundEachCall):
    """PERMISSION_DENIED or UNAUTHENTICATED, and a log line naming caller and method, for a
    call the policy refuses; binds the call's principal.Caller otherwise.

    `namespace`: callers must come from the server's own namespace as well; None for a
    plaintext server, which checks tokens only. `keys`: the token verification keys.
    """

    def __init__(
        self,
        namespace: str | None,
        keys: tokens.KeyDirectory,
        rules: policy.Policy | None = None,
    ) -> None:
        self.namespace = namespace
        self.keys = keys
        self.rules = rules

    def advise(self, method: str, behavior: Behavior) -> Behavior:
        if policy.is_open(method):
            return behavior
        customers = policy.accepts_customers(method, self.rules)

        async def checked(request: Any, context: grpc.aio.ServicerContext) -> Any:
            namespace, identity = caller_of(context)
            if self.namespace is not None and namespace != self.namespace:
                await self._deny(context, method, identity, namespace)
            if customers:
                caller = await self._customer_or_operator(context, method, identity)
            elif self.namespace is None or policy.allowed(identity, method, self.rules):
                caller = Caller(identity)
            else:
                await self._deny(context, method, identity, namespace)
            principal.bind(caller)
            structlog.contextvars.bind_contextvars(caller=identity)
            return await behavior(request, context)

        return checked

    async def _customer_or_operator(
        self, context: grpc.aio.ServicerContext, method: str, identity: str
    ) -> Caller:
        try:
            token = bearer_token(context.invocation_metadata())
            if token is not None:
                claims = tokens.verify(self.keys.ring(), token)
                structlog.contextvars.bind_contextvars(
                    user_id=claims.subject, token_id=claims.token_id
                )
                trace.get_current_span().set_attribute("enduser.id", claims.subject)
                return Caller(identity, claims.subject)
        except tokens.TokenRejected as rejected:
            log.warning("unauthenticated", caller=identity, rpc=method, reason=rejected.reason)
            await _abort_unauthenticated(context, rejected, INVALID_TOKEN)
        if self.namespace is None or policy.allowed(identity, method, self.rules):
            # On the call's own log line (interceptors.logging), not one more line per call.
            structlog.contextvars.bind_contextvars(acting_for="any customer")
            return Caller(identity)
        log.warning("unauthenticated", caller=identity, rpc=method, reason=NO_TOKEN)
        await _abort_unauthenticated(
            context, Unauthenticated(NEEDS_TOKEN, reason=NO_TOKEN), CHALLENGE
        )
        raise AssertionError("abort raises")

    @staticmethod
    async def _deny(
        context: grpc.aio.ServicerContext, method: str, identity: str, namespace: str
    ) -> None:
        log.warning(
            "permission denied",
            caller=identity,
            caller_namespace=namespace,
            rpc=method,
            peer=context.peer(),
        )
        await context.abort(
            grpc.StatusCode.PERMISSION_DENIED,
            f"{identity} (namespace {namespace}) may not call {method}",
        )


async def _abort_unauthenticated(
    context: grpc.aio.ServicerContext, error: Unauthenticated, challenge: str
) -> None:
    # With an ErrorInfo naming the reason (NO_TOKEN, TOKEN_EXPIRED, TOKEN_INVALID) as every
    # other refusal has, and RFC 6750 section 3's challenge: the scheme the caller should
    # use, said the way HTTP would.
    await context.abort(
        grpc.StatusCode.UNAUTHENTICATED,
        error.message,
        trailing_metadata=(
            *status.trailing_metadata(status.to_status(error)),
            ("www-authenticate", challenge),
        ),
    )


def identity_check(settings: ServerSettings) -> list[IdentityCheck]:
    """The check, with the namespace of the server's own certificate (None in plaintext) and
    the token keys of its settings."""
    tls = settings.tls
    namespace = None if tls.directory is None else read_material(tls.directory).namespace
    return [IdentityCheck(namespace, tokens.KeyDirectory(settings.tokens.keys_directory))]
