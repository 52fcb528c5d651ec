"""The server bootstrap: health per service, reflection, a start that may wait, a graceful stop."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import grpc
import pytest
import structlog
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from shop_grpc.config import ConfigError, ShutdownSettings
from shop_grpc.probe import LIVENESS
from shop_grpc.server import App, GrpcServer, Registration, run
from shop_grpc.testing import free_port, test_settings


class SlowHealth(health_pb2_grpc.HealthServicer):
    """A stand-in service whose call takes a while, to be caught mid-flight by a stop."""

    async def Check(self, request, context):
        await asyncio.sleep(0.5)
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


def slow_registration() -> Registration:
    handler = grpc.method_handlers_generic_handler(
        "test.Slow",
        {
            "Check": grpc.unary_unary_rpc_method_handler(
                SlowHealth().Check,
                request_deserializer=health_pb2.HealthCheckRequest.FromString,
                response_serializer=health_pb2.HealthCheckResponse.SerializeToString,
            )
        },
    )
    return Registration("test.Slow", lambda server: server.add_generic_rpc_handlers([handler]))


async def test_health_reflection_and_draining_stop(tmp_path):
    settings = test_settings(
        "user",
        f"sqlite:///{tmp_path / 'x.db'}",
        shutdown=ShutdownSettings(grace_seconds=2.0, drain_seconds=0.3),
    )
    server = GrpcServer(settings, [slow_registration()])
    port = await server.start()
    await server.set_serving(True)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for name in ("", "test.Slow"):
            reply = await health.Check(health_pb2.HealthCheckRequest(service=name), timeout=2)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING

        listing = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=2
        )
        names = {s.name async for r in listing for s in r.list_services_response.service}
        assert {"test.Slow", "grpc.health.v1.Health"} <= names

        slow = channel.unary_unary(
            "/test.Slow/Check",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        in_flight = asyncio.ensure_future(slow(health_pb2.HealthCheckRequest(), timeout=5))
        await asyncio.sleep(0.1)
        stopping = asyncio.create_task(server.stop())
        await asyncio.sleep(0.05)
        status = await health.Check(health_pb2.HealthCheckRequest(service="test.Slow"), timeout=2)
        assert status.status == health_pb2.HealthCheckResponse.NOT_SERVING
        assert (await in_flight).status == health_pb2.HealthCheckResponse.SERVING
        await stopping


async def test_a_taken_port_is_an_error_not_a_silent_share(tmp_path):
    first = GrpcServer(test_settings("user", "sqlite://"), [])
    port = await first.start()
    clash = GrpcServer(test_settings("user", "sqlite://", listen_address=f"127.0.0.1:{port}"), [])
    try:
        with pytest.raises(ConfigError, match=f"SHOP_LISTEN_ADDRESS 127.0.0.1:{port}: cannot be"):
            await clash.start()
    finally:
        await clash.abandon()
        await first.stop(0)


async def test_a_stop_keeps_to_its_budget_when_cleanup_hangs():
    budget = ShutdownSettings(grace_seconds=0.2, background_seconds=0.3, flush_seconds=0.1)
    settings = test_settings("user", "sqlite://", shutdown=budget)
    cleaned, closed = asyncio.Event(), asyncio.Event()

    async def sweeper() -> None:
        await asyncio.Event().wait()

    async def close_database() -> None:
        cleaned.set()
        await asyncio.sleep(30)  # a resource that never finishes closing
        closed.set()

    with structlog.testing.capture_logs() as lines:

        async def start() -> App:
            return App([], background=[sweeper], cleanup=[close_database])

        running = asyncio.create_task(run(settings, start))
        async with asyncio.timeout(5):
            while not any(line["event"] == "serving" for line in lines):
                await asyncio.sleep(0.01)
        began = time.monotonic()
        os.kill(os.getpid(), signal.SIGTERM)  # run() handles it; pytest never sees it
        await asyncio.wait_for(running, budget.total_seconds + 0.5)
        took = time.monotonic() - began

    assert took < budget.total_seconds + 0.2
    assert cleaned.is_set() and not closed.is_set()
    events = {line["event"]: line for line in lines}
    assert events["shutting down"]["budget_seconds"] == pytest.approx(0.6)
    assert events["background work cut short"]["background_seconds"] == 0.3
    assert "stopped" in events


SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def status(address: str, service: str = "") -> int:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=2)
        return int(reply.status)


async def until(condition, seconds: float = 5.0) -> None:
    async with asyncio.timeout(seconds):
        while not await condition():
            await asyncio.sleep(0.02)


async def _answers(address: str) -> bool:
    try:
        await status(address)
    except grpc.aio.AioRpcError:
        return False
    return True


async def _is(address: str, service: str, expected: int) -> bool:
    return await status(address, service) == expected


async def test_the_probe_port_says_not_serving_until_the_app_has_started_and_alive_throughout():
    probe = f"127.0.0.1:{free_port()}"
    settings = test_settings("user", "sqlite://", probe_address=probe)
    database_ready = asyncio.Event()

    async def start() -> App:
        await database_ready.wait()  # what a service waits for before it can serve
        return App([slow_registration()])

    running = asyncio.create_task(run(settings, start))
    await until(lambda: _answers(probe))
    assert await status(probe) == NOT_SERVING
    assert await status(probe, LIVENESS) == SERVING
    await asyncio.sleep(0.3)
    assert await status(probe) == NOT_SERVING  # still waiting, never restarted by its probes
    database_ready.set()
    await until(lambda: _is(probe, "", SERVING))
    assert await status(probe, "test.Slow") == SERVING
    assert await status(probe, LIVENESS) == SERVING
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.wait_for(running, settings.shutdown.total_seconds + 1)


async def test_a_signal_while_starting_cancels_the_start_and_ends_the_run_at_once():
    settings = test_settings("user", "sqlite://", probe_address=f"127.0.0.1:{free_port()}")
    waiting, cancelled = asyncio.Event(), asyncio.Event()

    async def start() -> App:
        waiting.set()
        try:
            await asyncio.Event().wait()  # a database that never answers
        except asyncio.CancelledError:
            cancelled.set()
            raise
        raise AssertionError("unreachable")

    with structlog.testing.capture_logs() as lines:
        running = asyncio.create_task(run(settings, start))
        await asyncio.wait_for(waiting.wait(), 5)
        began = time.monotonic()
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(running, 5)
    assert time.monotonic() - began < 1
    assert cancelled.is_set()
    events = [line["event"] for line in lines]
    assert events[-2:] == ["shutting down before serving", "stopped"]
    assert "serving" not in events
