"""Checks the caller's certificate identity against shop_grpc.policy before any handler runs."""

from __future__ import annotations

from typing import Any

import grpc
import structlog

from shop_grpc import policy
from shop_grpc.certs import parse_spiffe_id
from shop_grpc.config import TlsSettings
from shop_grpc.credentials import read_material
from shop_grpc.interceptors._wrap import AroundEachCall, Behavior

log = structlog.get_logger("shop_grpc.identity")

UNKNOWN = "unknown"


def caller_of(context: grpc.aio.ServicerContext) -> tuple[str, str]:
    """(namespace, identity) from the peer's SPIFFE ID; UNKNOWN for both without one."""
    values = context.auth_context().get("peer_spiffe_id") or [b""]
    parsed = parse_spiffe_id(values[0].decode("utf-8", "replace"))
    return parsed if parsed else (UNKNOWN, UNKNOWN)


class IdentityCheck(AroundEachCall):
    """PERMISSION_DENIED, and a log line naming caller and method, for what the policy refuses.

    `namespace`: callers must come from the server's own namespace as well.
    """

    def __init__(
        self,
        namespace: str,
        rules: policy.Policy | None = None,
    ) -> None:
        self.namespace = namespace
        self.rules = rules

    def advise(self, method: str, behavior: Behavior) -> Behavior:
        if policy.is_open(method):
            return behavior

        async def checked(request: Any, context: grpc.aio.ServicerContext) -> Any:
            namespace, identity = caller_of(context)
            if namespace != self.namespace or not policy.allowed(identity, method, self.rules):
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
            structlog.contextvars.bind_contextvars(caller=identity)
            return await behavior(request, context)

        return checked


def identity_check(tls: TlsSettings) -> list[IdentityCheck]:
    """The check for a server with mTLS (callers from its own certificate's namespace); none
    for a plaintext one, which has no caller identities to check."""
    if tls.directory is None:
        return []
    return [IdentityCheck(read_material(tls.directory).namespace)]
