"""The shop server of `shop bench rpc`: the shared runtime with no service, as a process:

    python -m shop_cli.bench.rpc.shop_server --listen HOST:PORT --tls-dir DIR

What shop_grpc.service.serve does for a service, less the database and the service's own
gRPC services: logging (JSON lines, as deployed) and telemetry configured, then
shop_grpc.server.run — the interceptor chain, grpc.health.v1, reflection, reloading mTLS
credentials from DIR, keepalive and connection age, SERVING once started, the graceful stop
on SIGTERM or SIGINT, exit 0. Every other setting is a service's default.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from pathlib import Path

from shop_grpc import logs, telemetry
from shop_grpc.config import LogSettings, ServerSettings, TlsSettings
from shop_grpc.server import App, run

SERVICE_NAME = "null"
"""Its name in its log lines."""


def settings(listen: str, tls_dir: Path) -> ServerSettings:
    """A service's settings as an empty environment gives them, but for the address, JSON
    logs, mTLS from `tls_dir`, and no probe port."""
    return ServerSettings(
        service=SERVICE_NAME,
        listen_address=listen,
        database_url="",
        instance_id=f"{SERVICE_NAME}@{listen}",
        log=LogSettings(format="json"),
        tls=TlsSettings(tls_dir),
    )


async def _nothing_to_start() -> App:
    return App(services=())


async def serve(listen: str, tls_dir: Path) -> None:
    server_settings = settings(listen, tls_dir)
    logs.configure(
        server_settings.log, service=server_settings.service, instance=server_settings.instance_id
    )
    telemetry.configure(server_settings)
    await run(server_settings, _nothing_to_start)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m shop_cli.bench.rpc.shop_server")
    parser.add_argument("--listen", required=True, metavar="HOST:PORT")
    parser.add_argument("--tls-dir", required=True, type=Path, metavar="DIR")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.listen, args.tls_dir))


if __name__ == "__main__":
    main()
