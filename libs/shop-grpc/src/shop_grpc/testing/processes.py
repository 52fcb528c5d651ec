"""A service as an operator runs it: ``python -m <module>`` in a process of its own."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from shop_grpc.config import stop_timeout
from shop_grpc.testing.ports import free_port

SERVING = health_pb2.HealthCheckResponse.SERVING

_OUTPUT_LIMIT = 16 * 2**20

_QUICK_RECONNECT = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 250),
]


class ServiceProcess:
    """``python -m <module>`` as an operator runs it, on a free loopback port.

    async with ServiceProcess("shop_user", tmp_path) as service:
        assert await service.health("shop.user.v1.UserService") == SERVING
        assert await service.terminate() == 0

    Entering raises AssertionError, with the process's output, if it exits before it is up,
    and TimeoutError if it is not up within START_SECONDS; either way the process is killed.
    """

    START_SECONDS = 20.0

    def __init__(
        self,
        module: str,
        data_dir: Path,
        env: dict[str, str] | None = None,
        grace: float = 1.0,
        address: str | None = None,
        wait_serving: bool = True,
    ) -> None:
        """`address`: host:port to serve on (default a free port on 127.0.0.1).
        `wait_serving`: on entry, wait until the service is SERVING; False: only until its
        probe port answers (a service still waiting for its database, say)."""
        self.module = module
        self.address = address or f"127.0.0.1:{free_port()}"
        self.probe_address = f"127.0.0.1:{free_port()}"
        self.metrics_port = free_port()
        self.wait_serving = wait_serving
        self.env = {k: v for k, v in os.environ.items() if k != "SHOP_DATABASE_URL"}
        self.env.update(
            SHOP_LISTEN_ADDRESS=self.address,
            SHOP_DATA_DIR=str(data_dir),
            SHOP_SHUTDOWN_GRACE_SECONDS=str(grace),
            SHOP_LOG_FORMAT="json",
            # Plaintext on purpose: these tests are about the process, mTLS has its own.
            SHOP_INSECURE="1",
            SHOP_PROBE_ADDRESS=self.probe_address,
            SHOP_METRICS_ADDRESS=f"127.0.0.1:{self.metrics_port}",
        )
        self.env.update(env or {})
        self._stdout = self._stderr = b""

    async def __aenter__(self) -> ServiceProcess:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            self.module,
            env=self.env,
            # Apart: the service's own lines go to stdout, gRPC core's and Python's notices
            # to stderr. The generous limit keeps a chatty test from pausing the process.
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=_OUTPUT_LIMIT,
        )
        # Short reconnect backoff: the first attempts find nobody listening yet.
        self.channel = grpc.aio.insecure_channel(self.address, options=_QUICK_RECONNECT)
        self.probe_channel = grpc.aio.insecure_channel(self.probe_address, options=_QUICK_RECONNECT)
        try:
            await self._wait_started()
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def _wait_started(self) -> None:
        """Until the service is SERVING or, without `wait_serving`, its probe port answers."""
        async with asyncio.timeout(self.START_SECONDS):
            while True:
                if self.process.returncode is not None:
                    raise AssertionError(f"{self.module} exited early: {await self.output()}")
                with contextlib.suppress(grpc.aio.AioRpcError):
                    if not self.wait_serving:
                        await self.probe_health()
                        return
                    if await self.health("") == SERVING:
                        return
                await asyncio.sleep(0.1)

    async def health(self, service: str) -> int:
        """The status the main (gRPC) port gives `service`."""
        return await _check(self.channel, service)

    async def probe_health(self, service: str = "") -> int:
        """The status the plaintext probe port gives `service`, as the kubelet asks it."""
        return await _check(self.probe_channel, service)

    async def listed_services(self) -> set[str]:
        """What a reflection client (grpcurl list) sees."""
        stub = reflection_pb2_grpc.ServerReflectionStub(self.channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        async for reply in stub.ServerReflectionInfo(iter([request]), timeout=5):
            return {s.name for s in reply.list_services_response.service}
        return set()

    async def terminate(self) -> int:
        """SIGTERM, then the exit code; fails if the process outlives its shutdown budget."""
        self.process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(self.process.wait(), stop_timeout(self.env))
        return int(self.process.returncode or 0)

    async def output(self) -> str:
        """Everything the process wrote, stdout then stderr; returns once it has exited."""
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        stdout, stderr = await asyncio.gather(
            self.process.stdout.read(), self.process.stderr.read()
        )
        self._stdout += stdout
        self._stderr += stderr
        return (self._stdout + self._stderr).decode(errors="replace")

    async def __aexit__(self, *exc: object) -> None:
        await self.channel.close()
        await self.probe_channel.close()
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


async def _check(channel: grpc.aio.Channel, service: str) -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=1)
    return int(reply.status)
