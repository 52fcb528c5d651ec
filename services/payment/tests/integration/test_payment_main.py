"""``python -m shop_payment`` as a process: health, reflection, clean exit on SIGTERM."""

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

SERVICE = "shop.payment.v1.PaymentService"
GRACE_SECONDS = 2.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_serving(health: health_pb2_grpc.HealthStub, name: str) -> int:
    for _ in range(150):
        try:
            reply = await health.Check(health_pb2.HealthCheckRequest(service=name), timeout=1)
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return reply.status
        except grpc.aio.AioRpcError:
            pass
        await asyncio.sleep(0.1)
    pytest.fail(f"{name or 'server'} never reported SERVING")


async def listed_services(channel: grpc.aio.Channel) -> set[str]:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    call = stub.ServerReflectionInfo(iter([request]))
    names: set[str] = set()
    async for reply in call:
        names |= {s.name for s in reply.list_services_response.service}
    return names


async def test_module_serves_health_and_reflection_then_stops_on_sigterm(tmp_path: Path):
    port = free_port()
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
        "shop_payment",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            await wait_serving(health, "")
            await wait_serving(health, SERVICE)
            assert SERVICE in await listed_services(channel)
        assert (tmp_path / "payment.db").exists()
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), GRACE_SECONDS + 5)
        assert process.returncode == 0, stderr.decode()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_bad_configuration_exits_2(tmp_path: Path):
    env = {**os.environ, "SHOP_DATA_DIR": str(tmp_path), "SHOP_LOG_LEVEL": "loud"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "shop_payment", env=env, stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode == 2
    assert b"SHOP_LOG_LEVEL" in stderr
