"""The /metrics endpoint (shop_grpc.metrics.endpoint): one path, bounded connections."""

from __future__ import annotations

import asyncio
import socket
import urllib.error
import urllib.request
from collections.abc import Callable

import pytest
from opentelemetry.trace import SpanKind, format_trace_id

from shop_grpc.config import ConfigError
from shop_grpc.metrics.endpoint import MetricsEndpoint
from shop_grpc.testing import Traced, scrape
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


async def test_the_endpoint_serves_both_formats_with_trace_exemplars(shop, traced: Traced) -> None:
    async with shop.serving() as server, shop.channel(server) as channel:
        await channel.unary_unary(f"/{shop.service}/Get")(b"x", timeout=5)
        text_type, text = await asyncio.to_thread(scrape, server.metrics.port)
        open_type, openmetrics = await asyncio.to_thread(scrape, server.metrics.port, OPENMETRICS)

    handled = 'grpc_server_handled_total{grpc_code="OK",grpc_method="Get"'
    assert text_type.startswith("text/plain; version=0.0.4")
    assert open_type.startswith("application/openmetrics-text")
    assert handled in text and handled in openmetrics
    assert "process_resident_memory_bytes" in text
    [span] = [s for s in traced.spans() if s.kind is SpanKind.SERVER and s.name.endswith("/Get")]
    trace_id = format_trace_id(span.context.trace_id)
    exemplar = f'# {{span_id="{span.context.span_id:016x}",trace_id="{trace_id}"}}'
    buckets = [
        line
        for line in openmetrics.splitlines()
        if line.startswith("grpc_server_handling_seconds_bucket") and 'grpc_method="Get"' in line
    ]
    assert [line for line in buckets if exemplar in line], buckets
    assert "trace_id" not in text  # the text format has no exemplars


async def test_a_metrics_port_already_taken_fails_the_start(shop) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"SHOP_METRICS_ADDRESS 127.0.0.1:{port}"):
            async with shop.serving(metrics_address=f"127.0.0.1:{port}"):
                pass
