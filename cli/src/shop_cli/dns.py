"""A small authoritative DNS server on loopback: what a headless Service is in a cluster.

    with LoopbackDns() as dns:
        dns.set("user.shop.test", ["127.0.0.2", "127.0.0.3"])
        target = dns.target("user.shop.test", 50054)   # dns://127.0.0.1:<port>/user.shop.test:50054

gRPC's DNS resolver (c-ares, the default in grpcio 1.85) sends its queries to the
server named in the target's authority, so channels to such a target resolve one
name to every replica and round-robin over them, exactly as with a headless
Service. Names it does not know get NXDOMAIN; known names without the asked-for
record type (AAAA, TXT) get an empty answer.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from types import TracebackType
from typing import Any

from dnslib import QTYPE, RCODE, RR, A, DNSRecord
from dnslib.server import BaseResolver, DNSLogger, DNSServer

TTL_SECONDS = 1
"""gRPC ignores TTLs (it re-resolves when a connection closes); kept short for other tools."""


class _Records(BaseResolver):  # type: ignore[misc]  # dnslib ships no type information
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._names: dict[str, list[str]] = {}

    def set(self, name: str, addresses: Iterable[str]) -> None:
        with self._lock:
            self._names[_normal(name)] = list(addresses)

    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:
        reply = request.reply()
        question = request.q
        with self._lock:
            addresses = self._names.get(_normal(str(question.qname)))
        if addresses is None:
            reply.header.rcode = RCODE.NXDOMAIN
        elif question.qtype in (QTYPE.A, QTYPE.ANY):
            for address in addresses:
                reply.add_answer(RR(question.qname, QTYPE.A, rdata=A(address), ttl=TTL_SECONDS))
        return reply


def _normal(name: str) -> str:
    return name.rstrip(".").lower()


class LoopbackDns:
    """Serves A records over UDP on `host`, on a free port unless one is given."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._records = _Records()
        quiet = DNSLogger(log="-request,-reply,-truncated,-data,-recv,-send", prefix=False)
        self._server = DNSServer(self._records, address=host, port=port, logger=quiet)
        self.host = host
        self.port = int(self._server.server.server_address[1])

    def set(self, name: str, addresses: Iterable[str]) -> None:
        """Answers `name` with these A records from now on (replacing earlier ones)."""
        self._records.set(name, addresses)

    def target(self, name: str, port: int) -> str:
        """A gRPC target that resolves `name` through this server."""
        return f"dns://{self.host}:{self.port}/{name}:{port}"

    def start(self) -> None:
        self._server.start_thread()

    def stop(self) -> None:
        self._server.stop()
        self._server.server.server_close()

    def __enter__(self) -> LoopbackDns:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
