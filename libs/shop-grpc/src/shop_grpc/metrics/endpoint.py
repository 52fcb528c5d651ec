"""``/metrics`` over plain HTTP on a port of its own (SHOP_METRICS_ADDRESS).

The client library's WSGI app, served from a thread of this process: a scrape never waits for
the event loop, so a service whose loop is stuck still shows it (its process CPU going up, its
calls not finishing). The answer is the Prometheus text format, or OpenMetrics (which carries
the exemplars) when the scraper's Accept header asks for it, as Prometheus does. Any other
path is 404.

The server is the library's thread-per-connection one with two limits of ours, since anyone
who can reach the port can open connections: a connection that sends nothing for
READ_TIMEOUT_SECONDS is closed, and past MAX_CONNECTIONS at once further ones are closed on
arrival, so idle sockets cannot pile threads up in the service (the library's own
``start_http_server`` has neither).

Plaintext, like the probe port: what it shows are counts, durations and label values from
bounded sets, never a request's data. In a cluster the chart's NetworkPolicies say who may
scrape (``metrics.scrapeFrom``).
"""

from __future__ import annotations

import errno
import socket
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler

import structlog
from prometheus_client import REGISTRY, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from shop_grpc.config import ConfigError, split_address

log = structlog.get_logger("shop_grpc.metrics")

PATH = "/metrics"
READ_TIMEOUT_SECONDS = 10.0
MAX_CONNECTIONS = 16
"""Connections served at once; a scraper needs one per scrape."""
POLL_SECONDS = 0.1
"""How soon the serving thread notices a stop."""

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def metrics_app() -> WsgiApp:
    """The registry's metrics at PATH; 404 elsewhere."""
    metrics: WsgiApp = make_wsgi_app(REGISTRY)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != PATH:
            start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
            return [f"metrics are at {PATH}\n".encode()]
        return metrics(environ, start_response)

    return app


class _QuietHandler(WSGIRequestHandler):
    server: _BoundedServer

    def setup(self) -> None:
        # StreamRequestHandler puts it on the connection: no read blocks longer than this.
        self.request.settimeout(self.server.read_timeout_seconds)
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not logged (every few seconds, forever)."""


class _BoundedServer(ThreadingWSGIServer):
    """A thread per connection, at most `max_connections` of them, each reading for at most
    `read_timeout_seconds` at a time."""

    def __init__(
        self,
        address: tuple[str, int],
        family: socket.AddressFamily,
        read_timeout_seconds: float,
        max_connections: int,
    ) -> None:
        self.address_family = family
        self.read_timeout_seconds = read_timeout_seconds
        self._slots = threading.BoundedSemaphore(max_connections)
        self._lock = threading.Lock()
        self.open_connections = 0
        super().__init__(address, _QuietHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        self._count(+1)
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._closed()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._closed()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that went quiet (the read timeout) or away: not worth a traceback on stderr,
        # which is all socketserver would do with it.
        log.debug("metrics connection ended", error=type(sys.exc_info()[1]).__name__)

    def _count(self, change: int) -> None:
        with self._lock:
            self.open_connections += change

    def _closed(self) -> None:
        self._count(-1)
        self._slots.release()


def _families(host: str) -> list[tuple[socket.AddressFamily, str]]:
    """Where to bind `host`: an empty host or ``::`` is every address, IPv6 and IPv4 on one
    socket, or IPv4 alone where the kernel has no IPv6 (gRPC falls back the same way)."""
    if host in ("", "::"):
        return [(socket.AF_INET6, "::"), (socket.AF_INET, "0.0.0.0")]
    return [(socket.AF_INET6 if ":" in host else socket.AF_INET, host)]


class MetricsEndpoint:
    """The process's metrics on `address` (``host:port``; empty: not served)."""

    def __init__(
        self,
        address: str,
        *,
        read_timeout_seconds: float = READ_TIMEOUT_SECONDS,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.address = address
        self.port = 0
        self.read_timeout_seconds = read_timeout_seconds
        self.max_connections = max_connections
        self._server: _BoundedServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> int:
        """Binds and serves; returns the bound port (0 when not served). Starting again changes
        nothing. Raises ConfigError when the address cannot be bound (the port is taken, say)."""
        if not self.address or self._server is not None:
            return self.port
        host, port = split_address(self.address, "SHOP_METRICS_ADDRESS")
        server = None
        for family, bind_host in _families(host):
            try:
                server = _BoundedServer(
                    (bind_host, port), family, self.read_timeout_seconds, self.max_connections
                )
                break
            except OSError as error:
                if error.errno == errno.EAFNOSUPPORT and family == socket.AF_INET6:
                    continue
                reason = error.strerror or str(error)
                raise ConfigError(f"SHOP_METRICS_ADDRESS {self.address}: {reason}") from None
        assert server is not None
        server.set_app(metrics_app())
        self._server = server
        self.port = int(server.server_port)
        self._thread = threading.Thread(
            target=server.serve_forever, args=(POLL_SECONDS,), name="metrics", daemon=True
        )
        self._thread.start()
        log.info("metrics served over http", address=self.address, port=self.port, path=PATH)
        return self.port

    @property
    def open_connections(self) -> int:
        """Connections being served now (each on a thread of its own)."""
        return 0 if self._server is None else self._server.open_connections

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
