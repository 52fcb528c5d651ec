"""open_channel (shop_grpc.channels): calls spread round-robin over a target's addresses, and
UNAVAILABLE is tried again only for the services named safe to repeat."""

from __future__ import annotations

from collections import Counter

import grpc
import pytest

from shop_grpc.channels import open_channel
from shop_grpc.errors import FieldViolation, InvalidArgument, Unavailable
from shop_grpc.testing import rpc_fails


async def test_calls_are_spread_over_every_address_of_the_target(loopback) -> None:
    answered: Counter[str] = Counter()

    def replica(name: str) -> grpc.RpcMethodHandler:
        async def answer(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            answered[name] += 1
            return b""

        return loopback.unary(answer)

    async with (
        loopback.serving(loopback.service("test.Stock", replica("a"))) as a,
        loopback.serving(loopback.service("test.Stock", replica("b"))) as b,
    ):
        channel = open_channel(f"ipv4:{a},{b}", default_timeout=5)
        try:
            await channel.channel_ready()
            for _ in range(20):
                await loopback.call(channel, "test.Stock")(b"", wait_for_ready=True)
        finally:
            await channel.close()
    assert set(answered) == {"a", "b"}, answered


@pytest.mark.parametrize(
    ("retry_services", "failure", "code", "attempts"),
    [
        (["test.Flaky"], Unavailable("restarting"), grpc.StatusCode.OK, 3),
        ([], Unavailable("restarting"), grpc.StatusCode.UNAVAILABLE, 1),
        (["test.Other"], Unavailable("restarting"), grpc.StatusCode.UNAVAILABLE, 1),
        (
            ["test.Flaky"],
            InvalidArgument([FieldViolation("sku", "is required")]),
            grpc.StatusCode.INVALID_ARGUMENT,
            1,
        ),
    ],
)
async def test_only_unavailable_is_retried_and_only_for_the_services_named(
    loopback, retry_services: list[str], failure: Exception, code: grpc.StatusCode, attempts: int
) -> None:
    tried = 0

    async def flaky(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        nonlocal tried
        tried += 1
        if tried < 3:
            raise failure
        return b"done"

    async with loopback.serving(loopback.service("test.Flaky", loopback.unary(flaky))) as address:
        channel = open_channel(address, retry_services=retry_services, default_timeout=5)
        try:
            if code is grpc.StatusCode.OK:
                assert await loopback.call(channel, "test.Flaky")(b"") == b"done"
            else:
                with rpc_fails(code):
                    await loopback.call(channel, "test.Flaky")(b"")
        finally:
            await channel.close()
    assert tried == attempts
