"""Keepalive settings of both ends, kept together because they must agree.

A client pings an idle connection every CLIENT_PING_SECONDS so that a replica
that vanished (a killed pod, a dropped NAT entry) is noticed in seconds rather
than at the next call. A server counts pings that arrive closer together than
its minimum as strikes and, after a few, closes the connection with GOAWAY
``too_many_pings``; so the server's minimum must stay below the client's
interval, and it must allow pings on connections without calls, because the
client sends them.
"""

from __future__ import annotations

CLIENT_PING_SECONDS = 20
"""How often a client pings a connection, with or without calls in flight."""
PING_TIMEOUT_SECONDS = 10
"""How long a ping may go unanswered before the connection counts as dead."""
SERVER_MIN_PING_SECONDS = 10
"""The closest together a server accepts a client's pings; below CLIENT_PING_SECONDS."""
SERVER_PING_SECONDS = 60
"""How often a server pings its clients, to drop connections of vanished ones."""

CLIENT_OPTIONS: list[tuple[str, int]] = [
    ("grpc.keepalive_time_ms", CLIENT_PING_SECONDS * 1000),
    ("grpc.keepalive_timeout_ms", PING_TIMEOUT_SECONDS * 1000),
    ("grpc.keepalive_permit_without_calls", 1),
    # 0: keep pinging an idle connection (the default stops after two pings without data).
    ("grpc.http2.max_pings_without_data", 0),
]

SERVER_OPTIONS: list[tuple[str, int]] = [
    ("grpc.keepalive_time_ms", SERVER_PING_SECONDS * 1000),
    ("grpc.keepalive_timeout_ms", PING_TIMEOUT_SECONDS * 1000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", SERVER_MIN_PING_SECONDS * 1000),
    ("grpc.http2.max_ping_strikes", 2),
]
