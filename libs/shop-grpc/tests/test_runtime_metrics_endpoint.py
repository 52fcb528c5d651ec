"""The /metrics endpoint (shop_grpc.metrics.endpoint): one path, bounded connections."""

from __future__ import annotations

import asyncio
import socket
import urllib.error
import urllib.request
from collections.abc import Callable

import pytest

from shop_grpc.metrics.endpoint import MetricsEndpoint
from shop_grpc.testing import scrape
from shop_grpc.testing.metrics import OPENMETRICS


async def _until_true(check: Callable[[], bool], seconds: float = 5.0) -> None:
    async with asyncio.timeout(seconds):
        while not check():
            await asyncio.sleep(0.05)


def _closed_by_server(connection: socket.socket, wait: float) -> bool:
    connection.settimeout(wait)
    try:
        return connection.recv(1) == b""
    except TimeoutError:
        return False


async def test_idle_connections_to_the_metrics_port_neither_pile_up_nor_stay() -> None:
    endpoint = MetricsEndpoint("127.0.0.1:0", read_timeout_seconds=5.0, max_connections=2)
    endpoint.start()
    idle = [socket.create_connection(("127.0.0.1", endpoint.port)) for _ in range(8)]
    try:
        seen = []
        for _ in range(10):
            seen.append(endpoint.open_connections)
            await asyncio.sleep(0.05)
        assert max(seen) <= 2  # a thread each, two at most
        # Those past the limit were closed on arrival; the others once idle too long.
        turned_away = [c for c in idle if _closed_by_server(c, 1.0)]
        assert len(turned_away) >= 6
        assert all(_closed_by_server(c, 10) for c in idle if c not in turned_away)
        await _until_true(lambda: endpoint.open_connections == 0)
        _, body = await asyncio.to_thread(scrape, endpoint.port)
        assert "process_resident_memory_bytes" in body
    finally:
        for connection in idle:
            connection.close()
        endpoint.stop()


async def test_only_the_metrics_path_answers_and_no_created_series_are_shown() -> None:
    endpoint = MetricsEndpoint("127.0.0.1:0")
    endpoint.start()
    try:
        with pytest.raises(urllib.error.HTTPError) as elsewhere:
            await asyncio.to_thread(
                urllib.request.urlopen, f"http://127.0.0.1:{endpoint.port}/", timeout=5
            )
        assert elsewhere.value.code == 404
        _, body = await asyncio.to_thread(scrape, endpoint.port, OPENMETRICS)
    finally:
        endpoint.stop()
    assert "grpc_server_handled_total" in body
    assert "_created" not in body
