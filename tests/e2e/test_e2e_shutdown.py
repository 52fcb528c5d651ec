"""A stop keeps to its budget, even with the span collector unreachable.

Each process is given a small budget (SHOP_SHUTDOWN_*) and an OTLP endpoint where nothing
listens, serves a few hundred traced calls, and is stopped: it must exit 0 within the
budget, having cut the span flush short rather than retried the export for its full
timeout per batch.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

import grpc
import pytest

from shop.inventory.v1 import inventory_pb2, inventory_pb2_grpc
from shop.user.v1 import user_pb2, user_pb2_grpc
from shop_cli.suite import find_free_base_port
from shop_grpc.config import Env, shutdown_settings
from shop_grpc.testing import ServiceProcess, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.local_only]  # its own processes

BUDGET = {
    "SHOP_SHUTDOWN_DRAIN_SECONDS": "0",
    "SHOP_SHUTDOWN_GRACE_SECONDS": "2",
    "SHOP_SHUTDOWN_BACKGROUND_SECONDS": "1",
    "SHOP_SHUTDOWN_FLUSH_SECONDS": "1",
}
BUDGET_SECONDS = shutdown_settings(Env(BUDGET)).total_seconds


def unreachable_collector() -> dict[str, str]:
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{free_port()}",
        "OTEL_TRACES_SAMPLER": "always_on",
    }


async def list_products(channel: grpc.aio.Channel, calls: int) -> None:
    stub = inventory_pb2_grpc.InventoryServiceStub(channel)
    for _ in range(calls):
        await stub.ListProducts(inventory_pb2.ListProductsRequest(page_size=10), timeout=5)


async def test_a_service_exits_within_its_budget_with_the_collector_unreachable(
    tmp_path: Path,
) -> None:
    env = {**BUDGET, **unreachable_collector()}
    async with ServiceProcess("shop_inventory", tmp_path, env=env) as service:
        await list_products(service.channel, 300)
        began = time.monotonic()
        service.process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(service.process.wait(), BUDGET_SECONDS)
        took = time.monotonic() - began
        output = (await service.output()).splitlines()

    # The service's own lines (the exporter's retries and gRPC's notices are plain text).
    lines = [json.loads(line) for line in output if line.startswith("{")]
    assert code == 0
    assert took < BUDGET_SECONDS
    events = {line["event"]: line for line in lines if line.get("event")}
    assert events["shutting down"]["budget_seconds"] == BUDGET_SECONDS
    assert events["span flush cut short"]["spans_dropped"] > 0
    assert "stopped" in events


async def test_shop_up_stops_within_its_budget_on_ctrl_c(tmp_path: Path) -> None:
    base_port = find_free_base_port()
    up = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "shop_cli",
        "up",
        "--insecure",
        "--data-dir",
        str(tmp_path),
        "--base-port",
        str(base_port),
        env={**os.environ, **BUDGET, **unreachable_collector()},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert up.stdout is not None
    try:
        async with asyncio.timeout(60):
            while not (line := await up.stdout.readline()).startswith(b"ready:"):
                assert line, "shop up exited before it was ready"
        async with (
            grpc.aio.insecure_channel(f"127.0.0.1:{base_port + 1}") as inventory,
            grpc.aio.insecure_channel(f"127.0.0.1:{base_port + 3}") as users,
        ):
            await list_products(inventory, 150)
            user_stub = user_pb2_grpc.UserServiceStub(users)
            for _ in range(150):
                await user_stub.ListUsers(user_pb2.ListUsersRequest(page_size=10), timeout=5)
        began = time.monotonic()
        up.send_signal(signal.SIGINT)  # what Ctrl-C sends
        output, _ = await asyncio.wait_for(up.communicate(), BUDGET_SECONDS + 2)
        took = time.monotonic() - began
    finally:
        if up.returncode is None:
            up.kill()
            await up.wait()

    text = output.decode()
    assert up.returncode == 0, text[-3000:]
    assert took < BUDGET_SECONDS + 1, text[-3000:]  # the services' budget, and shop up's own exit
    assert "SIGINT: stopping" in text
    assert text.count('"event": "span flush cut short"') >= 2  # inventory and user
