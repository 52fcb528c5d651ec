"""`python -m shop_inventory` as an operator runs it."""

from __future__ import annotations

from grpc_health.v1 import health_pb2

from shop_grpc.testing import ServiceProcess

SERVICE = "shop.inventory.v1.InventoryService"


async def test_it_serves_health_and_reflection_then_stops_cleanly_on_sigterm(tmp_path):
    async with ServiceProcess("shop_inventory", tmp_path) as service:
        assert await service.health(SERVICE) == health_pb2.HealthCheckResponse.SERVING
        assert {SERVICE, "grpc.health.v1.Health"} <= await service.listed_services()
        assert await service.terminate() == 0
    assert (tmp_path / "inventory.db").exists()
