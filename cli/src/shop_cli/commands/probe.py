"""`shop probe`: a grpc.health.v1 check exiting as grpc_health_probe does, for scripts and pods."""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shop_cli.arguments import command, positive_float
from shop_grpc.channels import open_channel


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


async def probe(address: str, service: str = "", call_timeout: float = 1.0) -> ProbeResult:
    if not address.strip():
        return ProbeResult(ProbeExit.INVALID_ARGUMENTS, "error: an address is required")
    channel = open_channel(address)
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
    result = asyncio.run(probe(args.address, args.service, args.timeout))
    print(result.message, file=sys.stdout if result.exit == ProbeExit.SERVING else sys.stderr)
    return int(result.exit)
