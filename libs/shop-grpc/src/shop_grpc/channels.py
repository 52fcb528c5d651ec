"""The one place outbound channels are built.

Every channel load-balances round-robin over what its target resolves to and
retries UNAVAILABLE through gRPC's own retry policy, for the services whose
every method is safe to repeat (reads, and writes carrying an idempotency key).

Targets such as ``dns:///inventory-headless.shop.svc.cluster.local:50052`` (a
headless Service: one A record per ready pod) give one subchannel per
replica. gRPC re-resolves only when a connection closes, so servers age their
connections out (server.server_options) and clients may re-resolve soon after
(DNS_MIN_RESOLUTION_MS); client-side health checking (``healthCheckConfig``,
which watches grpc.health.v1 on each replica) drops a replica that reports
NOT_SERVING while it drains, before it stops. Timeouts are not set here but per
call, by the deadline interceptor (shop_grpc.deadlines).

A TLS channel presents its identity's current certificate, rebuilt when the files change
(shop_grpc.reloading_channel). It checks the server's certificate for the name of the
service it means to reach (``grpc.ssl_target_name_override``), not the address it dials:
locally that is a loopback address per replica, in a cluster a headless Service name
resolving to pod IPs. Every certificate of a service carries its bare name, so the check
holds wherever the replicas are, and tells inventory from payment.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import grpc

from shop_grpc import keepalive
from shop_grpc.config import PLAINTEXT, TlsSettings
from shop_grpc.credentials import identity_files
from shop_grpc.interceptors import client_interceptors
from shop_grpc.reloading_channel import ReloadingChannel

RETRY_POLICY = {
    "maxAttempts": 4,
    "initialBackoff": "0.1s",
    "maxBackoff": "1s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"],
}
DNS_MIN_RESOLUTION_MS = 1000
"""Least time between two DNS resolutions of one channel (gRPC's default is 30 s)."""
RECONNECT_BACKOFF_MS = (200, 2000)
"""First and longest wait before reconnecting to a replica that went away. gRPC's
default grows to 120 s, so a restarted dependency would stay unreachable for minutes."""


def service_config(retry_services: Sequence[str]) -> str:
    config: dict[str, object] = {
        "loadBalancingConfig": [{"round_robin": {}}],
        # "": the server's overall status, which every shop server turns NOT_SERVING to drain.
        "healthCheckConfig": {"serviceName": ""},
    }
    if retry_services:
        config["methodConfig"] = [
            {"name": [{"service": name} for name in retry_services], "retryPolicy": RETRY_POLICY}
        ]
    return json.dumps(config)


def open_channel(
    target: str,
    *,
    retry_services: Sequence[str] = (),
    default_timeout: float | None = None,
    tls: TlsSettings = PLAINTEXT,
    server_name: str = "",
    interceptors: Sequence[grpc.aio.ClientInterceptor] = (),
) -> grpc.aio.Channel:
    """A channel to `target` (host:port or a dns:/// name); retries only the named services.

    `default_timeout`: the budget of each call made outside any inbound call's budget.
    `tls`: the identity the channel presents (a ReloadingChannel), or PLAINTEXT; `server_name`:
    the name the server's certificate must carry, e.g. "inventory" (default: target's host).
    `interceptors`: the caller's own, innermost (after the suite's).
    Raises shop_grpc.credentials.CertificateError when the identity's files are unusable.
    """
    options = [
        ("grpc.service_config", service_config(retry_services)),
        ("grpc.enable_retries", 1),
        ("grpc.dns_min_time_between_resolutions_ms", DNS_MIN_RESOLUTION_MS),
        ("grpc.initial_reconnect_backoff_ms", RECONNECT_BACKOFF_MS[0]),
        ("grpc.min_reconnect_backoff_ms", RECONNECT_BACKOFF_MS[0]),
        ("grpc.max_reconnect_backoff_ms", RECONNECT_BACKOFF_MS[1]),
        *keepalive.CLIENT_OPTIONS,
    ]
    interceptors = [*client_interceptors(default_timeout), *interceptors]
    if tls.directory is None:
        return grpc.aio.insecure_channel(target, options=options, interceptors=interceptors)
    if server_name:
        options.append(("grpc.ssl_target_name_override", server_name))
    return ReloadingChannel(target, identity_files(tls), options, interceptors)
