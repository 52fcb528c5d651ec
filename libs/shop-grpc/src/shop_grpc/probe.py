"""The plaintext probe port: grpc.health.v1 and nothing else.

The kubelet's gRPC probe cannot speak TLS. A second port on the main server
would expose every service in plaintext, so probes get a server object of
their own that hosts only the main server's HealthServicer: NOT_SERVING while
draining shows on both ports.
"""

from __future__ import annotations

import grpc
import structlog
from grpc_health.v1 import health, health_pb2_grpc

log = structlog.get_logger("shop_grpc.probe")

OPTIONS = [("grpc.so_reuseport", 0)]


class ProbeServer:
    def __init__(self, servicer: health.aio.HealthServicer, address: str) -> None:
        self.address = address
        self.port = 0
        self.server: grpc.aio.Server | None = None
        if address:
            self.server = grpc.aio.server(options=OPTIONS)
            health_pb2_grpc.add_HealthServicer_to_server(servicer, self.server)

    async def start(self) -> int:
        """Binds and serves; returns the bound port (0 when no address was configured)."""
        if self.server is None:
            return 0
        self.port = int(self.server.add_insecure_port(self.address))
        await self.server.start()
        log.info(
            "probe port serving grpc.health.v1 in plaintext", address=self.address, port=self.port
        )
        return self.port

    async def stop(self, grace: float | None) -> None:
        if self.server is not None:
            await self.server.stop(grace)
