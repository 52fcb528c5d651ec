"""``python -m shop_user`` as a process: health, reflection, graceful SIGTERM."""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

GRACE_SECONDS = 3.0
SERVICE = "shop.user.v1.UserService"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def health_status(channel: grpc.aio.Channel, service: str) -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    response = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=2)
    return response.status


async def wait_until_serving(
    channel: grpc.aio.Channel, process: asyncio.subprocess.Process
) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert process.returncode is None, "the service exited before serving"
        try:
            if await health_status(channel, SERVICE) == health_pb2.HealthCheckResponse.SERVING:
                return
        except grpc.aio.AioRpcError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError("the service never reported SERVING")


async def listed_services(channel: grpc.aio.Channel) -> set[str]:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    async for response in stub.ServerReflectionInfo(iter([request]), timeout=5):
        return {s.name for s in response.list_services_response.service}
    return set()


async def test_module_serves_health_and_reflection_and_stops_on_sigterm(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "SHOP_LISTEN_ADDRESS": f"127.0.0.1:{port}",
        "SHOP_DATA_DIR": str(tmp_path),
        "SHOP_SHUTDOWN_GRACE_SECONDS": str(GRACE_SECONDS),
        "SHOP_LOG_FORMAT": "json",
    }
    env.pop("SHOP_DATABASE_URL", None)
    output = tmp_path / "service.log"
    with output.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "shop_user", env=env, cwd=tmp_path, stdout=log, stderr=log
        )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            await wait_until_serving(channel, process)
            assert await health_status(channel, "") == health_pb2.HealthCheckResponse.SERVING
            assert SERVICE in await listed_services(channel)
        assert (tmp_path / "user.db").exists()
        process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        code = await asyncio.wait_for(process.wait(), GRACE_SECONDS + 5)
        assert code == 0, output.read_text()
        assert time.monotonic() - started < GRACE_SECONDS + 1
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def test_a_bad_setting_exits_2_naming_the_variable(tmp_path):
    env = {**os.environ, "SHOP_DATA_DIR": str(tmp_path), "SHOP_LOG_LEVEL": "loud"}
    result = subprocess.run(
        [sys.executable, "-m", "shop_user"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "SHOP_LOG_LEVEL" in result.stderr
