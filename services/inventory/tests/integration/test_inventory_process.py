"""`python -m shop_inventory` as an operator runs it."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

SERVICE = "shop.inventory.v1.InventoryService"
GRACE_SECONDS = 1.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _health(channel: grpc.aio.Channel, service: str) -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    response = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=1)
    return int(response.status)


async def _wait_serving(channel: grpc.aio.Channel, process: asyncio.subprocess.Process) -> None:
    async with asyncio.timeout(20):
        while True:
            assert process.returncode is None, "server exited early"
            try:
                if await _health(channel, "") == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(0.1)


async def _listed_services(channel: grpc.aio.Channel) -> set[str]:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)

    async def requests():
        yield reflection_pb2.ServerReflectionRequest(list_services="")

    async for response in stub.ServerReflectionInfo(requests(), timeout=5):
        return {s.name for s in response.list_services_response.service}
    return set()


async def test_module_serves_health_and_reflection_then_stops_on_sigterm(tmp_path):
    port = _free_port()
    env = {
        **os.environ,
        "SHOP_LISTEN_ADDRESS": f"127.0.0.1:{port}",
        "SHOP_DATA_DIR": str(tmp_path),
        "SHOP_SHUTDOWN_GRACE_SECONDS": str(GRACE_SECONDS),
        "SHOP_LOG_FORMAT": "json",
    }
    env.pop("SHOP_DATABASE_URL", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "shop_inventory",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            await _wait_serving(channel, process)
            assert await _health(channel, SERVICE) == health_pb2.HealthCheckResponse.SERVING
            assert SERVICE in await _listed_services(channel)
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), GRACE_SECONDS + 5)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    assert process.returncode == 0, stderr.decode()
    assert (tmp_path / "inventory.db").exists()
