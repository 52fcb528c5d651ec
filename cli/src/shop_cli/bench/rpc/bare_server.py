"""The bare server of `shop bench rpc`, as a process:

    python -m shop_cli.bench.rpc.bare_server --listen HOST:PORT --tls-dir DIR

A grpc.aio server with the standard health service on grpc's defaults, SERVING once it
listens, and mTLS from the identity in DIR (ca.crt, tls.crt, tls.key; client certificates of
that CA required) — and nothing of the shop runtime: this module imports none of it, so the
process's memory is grpc's alone. Stops on SIGTERM or SIGINT, exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Sequence
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc


def credentials(tls_dir: Path) -> grpc.ServerCredentials:
    def read(name: str) -> bytes:
        return (tls_dir / name).read_bytes()

    return grpc.ssl_server_credentials(
        [(read("tls.key"), read("tls.crt"))],
        root_certificates=read("ca.crt"),
        require_client_auth=True,
    )


async def serve(listen: str, tls_dir: Path) -> None:
    server = grpc.aio.server()
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    server.add_secure_port(listen, credentials(tls_dir))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    await stop.wait()
    await server.stop(0)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m shop_cli.bench.rpc.bare_server")
    parser.add_argument("--listen", required=True, metavar="HOST:PORT")
    parser.add_argument("--tls-dir", required=True, type=Path, metavar="DIR")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.listen, args.tls_dir))


if __name__ == "__main__":
    main()
