"""The one place outbound channels are built.

Every channel load-balances round-robin over what its target resolves to and
retries UNAVAILABLE through gRPC's own retry policy, for the services whose
every method is safe to repeat (reads, and writes carrying an idempotency key).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import grpc

from shop_grpc.interceptors import client_interceptors

RETRY_POLICY = {
    "maxAttempts": 4,
    "initialBackoff": "0.1s",
    "maxBackoff": "1s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"],
}


def service_config(retry_services: Sequence[str]) -> str:
    config: dict[str, object] = {"loadBalancingConfig": [{"round_robin": {}}]}
    if retry_services:
        config["methodConfig"] = [
            {"name": [{"service": name} for name in retry_services], "retryPolicy": RETRY_POLICY}
        ]
    return json.dumps(config)


def open_channel(target: str, *, retry_services: Sequence[str] = ()) -> grpc.aio.Channel:
    """A channel to `target` (host:port or a dns:/// name); retries only the named services."""
    options = [
        ("grpc.service_config", service_config(retry_services)),
        ("grpc.enable_retries", 1),
    ]
    return grpc.aio.insecure_channel(target, options=options, interceptors=client_interceptors())
