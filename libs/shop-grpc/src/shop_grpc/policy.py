"""Who may call what: every server checks its callers against one table.

Each service states who may call each of its methods in its own spec
(``ServiceSpec.callers``, shop_grpc.registry); the table is those, put together. Callers
are named by the identity in their certificate (``spiffe://shop/ns/<namespace>/sa/<identity>``):
a service, or ``client`` for the `shop` CLI an operator runs. A method missing from the
table is refused to everyone, so a new method stays closed until someone decides who may
call it.
"""

from __future__ import annotations

from collections.abc import Mapping

from shop_grpc import registry
from shop_grpc.registry import ANYONE, CUSTOMER

Policy = Mapping[str, Mapping[str, tuple[str, ...]]]
"""Proto service name → method → the identities that may call it."""

OPEN_SERVICES = (
    "grpc.health.v1.Health",
    "grpc.reflection.v1alpha.ServerReflection",
    "grpc.reflection.v1.ServerReflection",
)
"""Health and reflection: open to any authenticated caller (probes, grpcurl)."""


def allowed(identity: str, method: str, policy: Policy | None = None) -> bool:
    """Whether `identity` may call `method`, a full path like ``/pkg.Service/Method``, under
    `policy` (the installed services' own when None)."""
    if is_open(method):
        return True
    service, _, name = method.lstrip("/").partition("/")
    table = registry.policy() if policy is None else policy
    callers = table.get(service, {}).get(name, ())
    # CUSTOMER names no certificate: it is a token's holder (accepts_customers).
    return ANYONE in callers or (identity != CUSTOMER and identity in callers)


def accepts_customers(method: str, policy: Policy | None = None) -> bool:
    """Whether `method` may be called with a customer's access token (registry.CUSTOMER)."""
    service, _, name = method.lstrip("/").partition("/")
    table = registry.policy() if policy is None else policy
    return CUSTOMER in table.get(service, {}).get(name, ())


def is_open(method: str) -> bool:
    """Whether `method` is open to any caller the TLS handshake let in."""
    return method.lstrip("/").partition("/")[0] in OPEN_SERVICES
