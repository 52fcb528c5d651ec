"""One log line per served call (shop_grpc.interceptors.logging): its method and the status its
caller got, never the request; the method bound for the handler's own lines; probes unlogged."""

from __future__ import annotations

import grpc
import structlog
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shop_grpc.errors import NotFound
from shop_grpc.testing import rpc_fails

SECRET = b"card=4242424242424242"


def _lines() -> structlog.testing.LogCapture:
    return structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars])


async def test_a_call_is_one_line_with_its_method_and_code_and_not_its_request(loopback) -> None:
    async def find(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        structlog.get_logger().info("looking")
        raise NotFound("card", "c-1")

    with _lines() as lines:
        service = loopback.service("test.Cards", loopback.unary(find))
        async with loopback.serving(service) as address, grpc.aio.insecure_channel(address) as ch:
            with rpc_fails(grpc.StatusCode.NOT_FOUND):
                await loopback.call(ch, "test.Cards")(SECRET, timeout=5)
    [looking] = [line for line in lines if line["event"] == "looking"]
    [rpc] = [line for line in lines if line["event"] == "rpc"]
    assert looking["rpc"] == rpc["rpc"] == "/test.Cards/Call"
    assert rpc["code"] == "NOT_FOUND"
    assert isinstance(rpc["duration_ms"], float)
    assert SECRET.decode() not in repr(lines)


async def test_health_checks_write_no_line(loopback) -> None:
    with _lines() as lines:
        async with loopback.serving() as address, grpc.aio.insecure_channel(address) as channel:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=5
            )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    assert [line for line in lines if line["event"] == "rpc"] == []
