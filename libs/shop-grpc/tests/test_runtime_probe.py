"""The plaintext probe port: health only, sharing the main server's health servicer."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shop_grpc import reflection

PAYMENTS = "shop.payment.v1.PaymentService"  # the service `running` stands in for


async def test_the_probe_port_answers_health_in_plaintext_and_nothing_else(running, status_of):
    probe = f"127.0.0.1:{running.server.probe.port}"
    async with grpc.aio.insecure_channel(probe) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        reply = await health.Check(health_pb2.HealthCheckRequest(service=PAYMENTS), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        assert await status_of(channel, "ListPayments") == grpc.StatusCode.UNIMPLEMENTED
        # No request sent: the refusal may come before a message could be written.
        for service in reflection.SERVICE_NAMES:
            listing = channel.stream_stream(f"/{service}/ServerReflectionInfo")(timeout=5)
            assert await listing.code() == grpc.StatusCode.UNIMPLEMENTED, service

        # Draining shows on the probe port too: it shares the health servicer.
        await running.server.set_serving(False)
        reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING
    assert running.spy.ran == []
