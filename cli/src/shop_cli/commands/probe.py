"""`shop probe`: a grpc.health.v1 check exiting as grpc_health_probe does, for scripts and pods.

Plaintext by default, for the services' probe ports; with --tls (and grpc_health_probe's
-tls-* options) it checks an mTLS port, e.g. with the files of ``.shop/certs/client``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shop_cli.arguments import command, positive_float


class ProbeExit(IntEnum):
    SERVING = 0
    INVALID_ARGUMENTS = 1
    CONNECTION_FAILURE = 2
    RPC_FAILURE = 3
    UNHEALTHY = 4


@dataclass(frozen=True)
class ProbeResult:
    exit: ProbeExit
    message: str


@dataclass(frozen=True)
class ProbeTls:
    """grpc_health_probe's -tls-* options; without ca_cert the system's roots are trusted."""

    ca_cert: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    server_name: str = ""

    def channel(self, address: str) -> grpc.aio.Channel:
        """Raises OSError for a file it cannot read."""
        ca = self.ca_cert.read_bytes() if self.ca_cert else None
        key = self.client_key.read_bytes() if self.client_key else None
        cert = self.client_cert.read_bytes() if self.client_cert else None
        credentials = grpc.ssl_channel_credentials(ca, key, cert)
        options = [("grpc.ssl_target_name_override", self.server_name)] if self.server_name else []
        return grpc.aio.secure_channel(address, credentials, options=options)


def register(subparsers: Any) -> None:
    parser = command(
        subparsers, "probe", run, "check a server's gRPC health, like grpc_health_probe"
    )
    parser.usage_exit_code = ProbeExit.INVALID_ARGUMENTS
    parser.add_argument("address", metavar="ADDR", help="host:port of the server")
    parser.add_argument(
        "--service", default="", help="service name to check (default: the whole server)"
    )
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=1.0,
        metavar="SECONDS",
        help="for connecting, and again for the check (default 1)",
    )
    tls = parser.add_argument_group("TLS (spelled as grpc_health_probe spells them, or with --)")
    tls.add_argument("-tls", "--tls", action="store_true", help="use TLS (default: plaintext)")
    tls.add_argument(
        "-tls-ca-cert",
        "--tls-ca-cert",
        type=Path,
        metavar="FILE",
        help="CA certificates to trust instead of the system's",
    )
    tls.add_argument(
        "-tls-client-cert",
        "--tls-client-cert",
        type=Path,
        metavar="FILE",
        help="client certificate to present (needs --tls-client-key)",
    )
    tls.add_argument(
        "-tls-client-key", "--tls-client-key", type=Path, metavar="FILE", help="its private key"
    )
    tls.add_argument(
        "-tls-server-name",
        "--tls-server-name",
        default="",
        metavar="NAME",
        help="name to check the server's certificate for (default: ADDR's host)",
    )


def probe_tls(args: argparse.Namespace) -> ProbeTls | None:
    """The TLS options as given; raises ValueError for combinations grpc_health_probe refuses."""
    given = [args.tls_ca_cert, args.tls_client_cert, args.tls_client_key, args.tls_server_name]
    if not args.tls:
        if any(given):
            raise ValueError("-tls-* options given without -tls")
        return None
    if bool(args.tls_client_cert) != bool(args.tls_client_key):
        raise ValueError("-tls-client-cert and -tls-client-key go together")
    return ProbeTls(
        args.tls_ca_cert, args.tls_client_cert, args.tls_client_key, args.tls_server_name
    )


async def probe(
    address: str, service: str = "", call_timeout: float = 1.0, tls: ProbeTls | None = None
) -> ProbeResult:
    if not address.strip():
        return ProbeResult(ProbeExit.INVALID_ARGUMENTS, "error: an address is required")
    # A bare channel, as grpc_health_probe's: no retries, no client-side health checking.
    if tls is None:
        channel = grpc.aio.insecure_channel(address)
    else:
        try:
            channel = tls.channel(address)
        except OSError as error:
            return ProbeResult(
                ProbeExit.INVALID_ARGUMENTS, f"error: failed to load TLS files: {error}"
            )
    try:
        try:
            await asyncio.wait_for(channel.channel_ready(), call_timeout)
        except TimeoutError:
            return ProbeResult(
                ProbeExit.CONNECTION_FAILURE,
                f"timeout: failed to connect service {address!r} within {call_timeout:g}s",
            )
        return await _check(channel, service, call_timeout)
    finally:
        await channel.close()


async def _check(channel: grpc.aio.Channel, service: str, call_timeout: float) -> ProbeResult:
    stub = health_pb2_grpc.HealthStub(channel)
    try:
        response = await stub.Check(
            health_pb2.HealthCheckRequest(service=service), timeout=call_timeout
        )
    except grpc.aio.AioRpcError as exc:
        return ProbeResult(ProbeExit.RPC_FAILURE, _rpc_failure(exc, call_timeout))
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
    if response.status != health_pb2.HealthCheckResponse.SERVING:
        return ProbeResult(ProbeExit.UNHEALTHY, f"service unhealthy (responded with {status!r})")
    return ProbeResult(ProbeExit.SERVING, f"status: {status}")


def _rpc_failure(exc: grpc.aio.AioRpcError, call_timeout: float) -> str:
    code = exc.code()
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return (
            "error: this server does not implement the grpc health protocol (grpc.health.v1.Health)"
        )
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return f"timeout: health rpc did not complete within {call_timeout:g}s"
    details = f": {exc.details()}" if exc.details() else ""
    return f"error: health rpc failed: {code.name}{details}"


def run(args: argparse.Namespace) -> int:
    try:
        tls = probe_tls(args)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return int(ProbeExit.INVALID_ARGUMENTS)
    result = asyncio.run(probe(args.address, args.service, args.timeout, tls))
    print(result.message, file=sys.stdout if result.exit == ProbeExit.SERVING else sys.stderr)
    return int(result.exit)
