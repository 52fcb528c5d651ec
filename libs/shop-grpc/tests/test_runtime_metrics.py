"""What every service's metrics promise (shop_grpc.metrics): probes are not counted, metrics
off records no call, and an exemplar only where a sampled trace is."""

from __future__ import annotations

import asyncio

import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shop_grpc import metrics
from shop_grpc.testing import MetricChanges, scrape
from shop_grpc.testing.metrics import OPENMETRICS, samples


async def test_health_checks_and_reflection_are_not_counted(shop) -> None:
    counted = MetricChanges()
    async with shop.serving() as server, shop.channel(server) as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    assert not [
        key
        for key in samples()
        if key[0].startswith("grpc_") and ("grpc_service", "grpc.health.v1.Health") in key[1]
    ]
    assert counted.of("grpc_client_started_total", **shop.labels("Check")) == 0


async def test_with_metrics_off_no_call_is_recorded(shop, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics, "_enabled", False)
    counted = MetricChanges()
    async with shop.serving(metrics_address="") as server, shop.channel(server) as channel:
        await channel.unary_unary(f"/{shop.service}/Get")(b"x", timeout=5)
        assert server.metrics.port == 0
    for side in ("server", "client"):
        assert counted.of(f"grpc_{side}_started_total", **shop.labels("Get")) == 0


async def test_an_untraced_call_carries_no_exemplar(shop) -> None:
    async with shop.serving() as server, shop.channel(server) as channel:
        await channel.unary_unary(f"/{shop.service}/Peek")(b"x", timeout=5)
        _, openmetrics = await asyncio.to_thread(scrape, server.metrics.port, OPENMETRICS)
    buckets = [
        line
        for line in openmetrics.splitlines()
        if line.startswith("grpc_server_handling_seconds_bucket") and 'grpc_method="Peek"' in line
    ]
    assert buckets
    assert not [line for line in buckets if "trace_id" in line]
