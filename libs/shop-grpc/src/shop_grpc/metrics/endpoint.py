"""``/metrics`` over plain HTTP on a port of its own (SHOP_METRICS_ADDRESS).

Served by the client library's own server, in a thread: a scrape never waits for the event
loop, so a service whose loop is stuck still shows it (its process CPU going up, its calls not
finishing). The answer is the Prometheus text format, or OpenMetrics (which carries the
exemplars) when the scraper's Accept header asks for it, as Prometheus does. Any path answers
the same; ``/metrics`` is the one documented.

Plaintext, like the probe port: what it shows are counts, durations and label values from
bounded sets, never a request's data. In a cluster only the scraper may reach it (the chart's
NetworkPolicies).
"""

from __future__ import annotations

import threading
from wsgiref.simple_server import WSGIServer

import structlog
from prometheus_client import REGISTRY, start_http_server

from shop_grpc.config import ConfigError, split_address

log = structlog.get_logger("shop_grpc.metrics")


class MetricsEndpoint:
    """The process's metrics on `address` (``host:port``; empty: not served)."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.port = 0
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> int:
        """Binds and serves; returns the bound port (0 when not served). Starting again changes
        nothing. Raises ConfigError when the address cannot be bound (the port is taken, say)."""
        if not self.address or self._server is not None:
            return self.port
        host, port = split_address(self.address, "SHOP_METRICS_ADDRESS")
        try:
            self._server, self._thread = start_http_server(port, host, REGISTRY)
        except OSError as error:
            raise ConfigError(f"SHOP_METRICS_ADDRESS {self.address}: {error.strerror}") from None
        self.port = int(self._server.server_port)
        log.info("metrics served over http", address=self.address, port=self.port)
        return self.port

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
