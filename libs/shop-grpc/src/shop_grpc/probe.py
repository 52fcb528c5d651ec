"""The plaintext probe port: grpc.health.v1 and nothing else.

The kubelet's gRPC probe cannot speak TLS. A second port on the main server
would expose every service in plaintext, so probes get a server object of
their own that hosts only the main server's HealthServicer: NOT_SERVING while
draining shows on both ports.

It is also the first thing a service starts, before it has a database or a main
server: the probe port answers from the first second, NOT_SERVING (the server, "")
until the service serves, while LIVENESS is SERVING as long as the process runs.
So a pod waiting for its database is kept out of the Service's endpoints
(readiness asks for "") but not restarted (startup and liveness ask for LIVENESS).
"""

from __future__ import annotations

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from shop_grpc.config import bound

log = structlog.get_logger("shop_grpc.probe")

OPTIONS = [("grpc.so_reuseport", 0)]
LIVENESS = "liveness"
"""The health service name whose status is the process's own: SERVING from the start to
the exit, whatever the service's readiness. Kubernetes' grpc probes name it in `service`."""


class ProbeServer:
    def __init__(self, address: str) -> None:
        self.address = address
        self.port = 0
        self.health = health.aio.HealthServicer()
        self.started = False
        self.server: grpc.aio.Server | None = None
        if address:
            self.server = grpc.aio.server(options=OPTIONS)
            health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)

    async def start(self) -> int:
        """NOT_SERVING, alive, and bound; returns the bound port (0 when no address was
        configured). Starting again changes nothing."""
        if self.started:
            return self.port
        self.started = True
        await self.health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        await self.health.set(LIVENESS, health_pb2.HealthCheckResponse.SERVING)
        if self.server is None:
            return 0
        with bound("SHOP_PROBE_ADDRESS", self.address):
            self.port = int(self.server.add_insecure_port(self.address))
        await self.server.start()
        log.info(
            "probe port serving grpc.health.v1 in plaintext", address=self.address, port=self.port
        )
        return self.port

    async def stop(self, grace: float | None) -> None:
        if self.server is not None:
            await self.server.stop(grace)
