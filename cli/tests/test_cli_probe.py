import asyncio
import socket
import threading

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from shop_cli.__main__ import run
from shop_cli.commands.probe import probe


@pytest.fixture
async def health_server():
    """A real grpc.aio server with only the health service; yields (address, servicer)."""
    server = grpc.aio.server()
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    await servicer.set("shop.user.v1.UserService", health_pb2.HealthCheckResponse.NOT_SERVING)
    try:
        yield f"127.0.0.1:{port}", servicer
    finally:
        await server.stop(0)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_serving_server_exits_0(health_server):
    address, _ = health_server
    result = await probe(address)
    assert int(result.exit) == 0  # SERVING
    assert result.message == "status: SERVING"


async def test_not_serving_service_exits_4(health_server):
    address, _ = health_server
    result = await probe(address, "shop.user.v1.UserService")
    assert int(result.exit) == 4  # UNHEALTHY
    assert "NOT_SERVING" in result.message


async def test_status_change_is_seen(health_server):
    address, servicer = health_server
    await servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    assert (await probe(address)).exit == 4


async def test_unknown_service_is_an_rpc_failure_exit_3(health_server):
    address, _ = health_server
    result = await probe(address, "no.such.Service")
    assert int(result.exit) == 3  # RPC_FAILURE
    assert "NOT_FOUND" in result.message


async def test_nobody_listening_is_a_connection_failure_exit_2():
    result = await probe(f"127.0.0.1:{closed_port()}", call_timeout=0.3)
    assert int(result.exit) == 2  # CONNECTION_FAILURE


async def test_empty_address_is_invalid_exit_1():
    assert int((await probe(" ")).exit) == 1


def test_command_prints_status_and_exits_with_probe_code(capsys):
    # The command runs its own event loop, so it needs a server in another thread's loop.
    ready = threading.Event()
    box = {}

    async def serve(stop):
        server = grpc.aio.server()
        servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
        box["port"] = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        ready.set()
        await stop.wait()
        await server.stop(0)

    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    thread = threading.Thread(target=loop.run_until_complete, args=(serve(stop),))
    thread.start()
    try:
        assert ready.wait(5)
        assert run(["probe", f"127.0.0.1:{box['port']}"]) == 0
        assert capsys.readouterr().out == "status: SERVING\n"
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(5)
        loop.close()
