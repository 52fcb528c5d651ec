"""`shop up --replicas N`: N replicas of every service, reached round-robin through DNS.

Replica i of every service binds REPLICA_HOSTS[i] (127.0.0.1, 127.0.0.2, ... — all of
127.0.0.0/8 is loopback on Linux) on the service's usual port. A DNS server started
here on loopback answers ``<service>.shop.test`` with every replica's address, and
the order service and the printed client targets dial
``dns://127.0.0.1:<dns port>/<service>.shop.test:<port>``. So the local run goes
through the same resolver, round-robin, health checking and connection ageing as
a headless Service in a cluster, rather than a fixed list of addresses (gRPC's
``ipv4:`` targets), which would never re-resolve.

Replicas of one service share its database: with SQLite that is one file used by
several processes, which WAL mode, ``BEGIN IMMEDIATE`` and the busy timeout
(shop_grpc.storage) make safe. Each replica has its own SHOP_INSTANCE_ID (its
address), which the order saga's leases need, and its own log directory.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TextIO, cast

from shop_cli.dns import LoopbackDns
from shop_cli.suite import Suite, SuiteError, default_base_port, port_offset
from shop_grpc import registry

REPLICA_HOSTS = tuple(f"127.0.0.{i}" for i in range(1, 17))
"""The loopback address each replica binds, replica 0 first. Clients check a server's
certificate against the service's name (a TLS name override), not these addresses."""
LOCAL_DOMAIN = "shop.test"
"""Replicas of service s answer to s.shop.test (.test is reserved: it never leaks out)."""
DEFAULT_DNS_PORT = 50050


class _Labelled:
    """An echo stream that starts every line with the replica's address."""

    def __init__(self, stream: TextIO, label: str) -> None:
        self.stream = stream
        self.label = label

    def write(self, text: str) -> int:
        return self.stream.write(f"{self.label} {text}")

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()


def dns_name(service: str) -> str:
    return f"{service}.{LOCAL_DOMAIN}"


class ReplicatedSuite:
    """Several Suites, one per loopback address, behind one DNS name per service."""

    def __init__(
        self,
        data_dir: str | Path,
        replicas: int,
        *,
        base_port: int | None = None,
        dns_port: int = DEFAULT_DNS_PORT,
        echo: TextIO | None = None,
        probe_base_port: int | None = None,
        metrics_base_port: int | None = None,
        insecure: bool = False,
        extra_env: Mapping[str, str] | None = None,
        service_env: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        if not 1 <= replicas <= len(REPLICA_HOSTS):
            raise SuiteError(f"replicas must be between 1 and {len(REPLICA_HOSTS)}")
        self.data_dir = Path(data_dir).resolve()
        self.hosts = REPLICA_HOSTS[:replicas]
        try:
            self.dns = LoopbackDns(port=dns_port)
        except OSError as error:
            raise SuiteError(f"cannot serve DNS on 127.0.0.1:{dns_port}: {error}") from None
        first = default_base_port() if base_port is None else base_port
        ports = {service: first + port_offset(service) for service in registry.names()}
        targets = {s: self.dns.target(dns_name(s), port) for s, port in ports.items()}
        env = {f"SHOP_{s.upper()}_TARGET": target for s, target in targets.items()}
        env.update(extra_env or {})
        self._targets = targets
        self.members = [
            Suite(
                self.data_dir,
                host=host,
                base_port=base_port,
                extra_env=env,
                echo=None if echo is None else cast(TextIO, _Labelled(echo, host)),
                probe_base_port=probe_base_port,
                metrics_base_port=metrics_base_port,
                insecure=insecure,
                service_env=service_env,
                log_dir=self.data_dir / "logs" / host,
            )
            for host in self.hosts
        ]
        for service in registry.names():
            self.dns.set(dns_name(service), self.hosts)

    @property
    def certs_dir(self) -> Path:
        return self.members[0].certs_dir

    def endpoints(self) -> dict[str, str]:
        """The DNS target of each service, in the order of their declared ports."""
        return dict(self._targets)

    def probe_endpoints(self) -> dict[str, str]:
        probes = [member.probe_endpoints() for member in self.members]
        return {service: ", ".join(p[service] for p in probes) for service in registry.names()}

    def metrics_endpoints(self) -> dict[str, str]:
        scraped = [member.metrics_endpoints() for member in self.members]
        return {service: ", ".join(m[service] for m in scraped) for service in registry.names()}

    def log_path(self, replica: str) -> Path:
        """`replica` as exited() names it: <service>@<host>."""
        service, _, host = replica.partition("@")
        return self.members[self.hosts.index(host)].log_path(service)

    def start(self) -> None:
        self.dns.start()
        for member in self.members:
            member.start()

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        for member in self.members:
            member.wait_ready(max(deadline - time.monotonic(), 0.1))

    def exited(self) -> dict[str, int]:
        return {
            f"{service}@{host}": code
            for host, member in zip(self.hosts, self.members, strict=True)
            for service, code in member.exited().items()
        }

    def stop_timeout(self) -> float:
        return max(member.stop_timeout() for member in self.members)

    def stop(self, timeout: float | None = None) -> dict[str, int]:
        """Stops every replica at once (each drains in parallel), then the DNS server."""
        with ThreadPoolExecutor(len(self.members)) as pool:
            codes = list(pool.map(lambda member: member.stop(timeout), self.members))
        self.dns.stop()
        return {
            f"{service}@{host}": code
            for host, member_codes in zip(self.hosts, codes, strict=True)
            for service, code in member_codes.items()
        }
