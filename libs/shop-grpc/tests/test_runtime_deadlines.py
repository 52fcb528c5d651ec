"""Deadline propagation and cancellation through two real servers on loopback.

client -> front (a GrpcServer whose handlers call back) -> back (a GrpcServer that reports
the deadline it saw). The front's outbound channel is shop_grpc.channels.open_channel.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest

from shop_grpc import deadlines, faults
from shop_grpc.channels import open_channel
from shop_grpc.server import Registration
from shop_grpc.testing import free_port, rpc_fails, serving, test_settings

BACK = "test.Back"
# A server may see up to ~10 ms more than the timeout its client sent (grpc core's clock);
# the hop margin absorbs that, so a hop still ends before its caller.
CORE_SLACK = deadlines.HOP_MARGIN_SECONDS - 0.012
FRONT = "test.Front"


@dataclass
class Back:
    """Reports the deadline each call saw; `Hang` waits until it is cancelled."""

    calls: int = 0
    hung: asyncio.Event = field(default_factory=asyncio.Event)
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)

    async def remaining(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        self.calls += 1
        return repr(context.time_remaining()).encode()

    async def remaining_stream(
        self, request: bytes, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        self.calls += 1
        yield repr(context.time_remaining()).encode()

    async def hang(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        self.hung.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        return b""

    def registration(self) -> Registration:
        handler = grpc.method_handlers_generic_handler(
            BACK,
            {
                "Remaining": grpc.unary_unary_rpc_method_handler(self.remaining),
                "RemainingStream": grpc.unary_stream_rpc_method_handler(self.remaining_stream),
                "Hang": grpc.unary_unary_rpc_method_handler(self.hang),
            },
        )
        return Registration(BACK, lambda server: server.add_generic_rpc_handlers((handler,)))


@dataclass
class Front:
    """Each method calls the back's method of the same name and relays its answer."""

    channel: grpc.aio.Channel

    async def relay(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        method = request.decode()
        reply: bytes = await self.channel.unary_unary(f"/{BACK}/{method}")(b"")
        return reply

    async def relay_stream(
        self, request: bytes, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        async for reply in self.channel.unary_stream(f"/{BACK}/RemainingStream")(b""):
            yield reply

    async def stray_cancel(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        raise asyncio.CancelledError()

    def registration(self) -> Registration:
        handler = grpc.method_handlers_generic_handler(
            FRONT,
            {
                "Relay": grpc.unary_unary_rpc_method_handler(self.relay),
                "RelayStream": grpc.unary_stream_rpc_method_handler(self.relay_stream),
                "StrayCancel": grpc.unary_unary_rpc_method_handler(self.stray_cancel),
            },
        )
        return Registration(FRONT, lambda server: server.add_generic_rpc_handlers((handler,)))


@dataclass
class Hops:
    client: grpc.aio.Channel
    back: Back
    back_channel: grpc.aio.Channel

    async def relay(self, method: str, **kwargs: Any) -> float | None:
        reply = await self.client.unary_unary(f"/{FRONT}/Relay")(method.encode(), **kwargs)
        return _seen(reply)


def _seen(reply: bytes) -> float | None:
    value: float | None = eval(reply.decode())  # a float or None, written by repr()
    return value


@pytest.fixture
async def hops(tmp_path: Any) -> AsyncIterator[Hops]:
    back = Back()
    url = f"sqlite:///{tmp_path / 'unused.db'}"
    back_address = f"127.0.0.1:{free_port()}"
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(
            serving(
                test_settings("inventory", url, listen_address=back_address), [back.registration()]
            )
        )
        outbound = open_channel(back_address, default_timeout=2.0)
        stack.push_async_callback(outbound.close)
        front_settings = test_settings("order", url, default_deadline_seconds=3.0)
        client = await stack.enter_async_context(
            serving(front_settings, [Front(outbound).registration()])
        )
        yield Hops(client, back, outbound)


async def test_outbound_call_gets_what_is_left_of_the_callers_deadline(hops: Hops) -> None:
    seen = await hops.relay("Remaining", timeout=1.0)

    assert seen is not None
    assert 0.5 < seen < 1.0 - CORE_SLACK


async def test_call_without_deadline_gets_the_default_budget(hops: Hops) -> None:
    seen = await hops.relay("Remaining")

    assert seen is not None
    assert 2.5 < seen <= 3.0


async def test_streaming_calls_carry_the_deadline_too(hops: Hops) -> None:
    replies = hops.client.unary_stream(f"/{FRONT}/RelayStream")(b"", timeout=1.0)

    seen = [_seen(reply) async for reply in replies]

    assert len(seen) == 1 and seen[0] is not None
    assert 0.5 < seen[0] < 1.0 - CORE_SLACK


async def test_explicit_shorter_timeout_wins(hops: Hops) -> None:
    with deadlines.budget(5.0):
        reply = await hops.back_channel.unary_unary(f"/{BACK}/Remaining")(b"", timeout=0.5)

    seen = _seen(reply)
    assert seen is not None and seen <= 0.5


async def test_spent_budget_fails_fast_without_sending(hops: Hops) -> None:
    with deadlines.budget(0.01):
        await asyncio.sleep(0.02)
        with rpc_fails(grpc.StatusCode.DEADLINE_EXCEEDED):
            await hops.back_channel.unary_unary(f"/{BACK}/Remaining")(b"")
        with rpc_fails(grpc.StatusCode.DEADLINE_EXCEEDED):
            async for _ in hops.back_channel.unary_stream(f"/{BACK}/RemainingStream")(b""):
                pass

    assert hops.back.calls == 0


async def test_outside_any_call_the_channel_default_applies(hops: Hops) -> None:
    reply = await hops.back_channel.unary_unary(f"/{BACK}/Remaining")(b"")

    seen = _seen(reply)
    assert seen is not None and 1.5 < seen <= 2.0


async def test_cancelling_the_inbound_call_cancels_its_outbound_call(hops: Hops) -> None:
    call = hops.client.unary_unary(f"/{FRONT}/Relay")(b"Hang", timeout=10)
    await asyncio.wait_for(hops.back.hung.wait(), 5)

    call.cancel()

    await asyncio.wait_for(hops.back.cancelled.wait(), 2)


async def test_a_stray_cancelled_error_is_answered_not_left_hanging(hops: Hops) -> None:
    started = time.monotonic()
    with rpc_fails(grpc.StatusCode.CANCELLED):
        await hops.client.unary_unary(f"/{FRONT}/StrayCancel")(b"", timeout=10)

    assert time.monotonic() - started < 2


async def test_fault_hook_delays_the_chosen_method_only(tmp_path: Any) -> None:
    back = Back()
    settings = test_settings(
        "inventory",
        f"sqlite:///{tmp_path / 'unused.db'}",
        faults=faults.parse(f"{BACK}/Remaining=delay:300ms"),
    )
    async with serving(settings, [back.registration()]) as channel:
        started = time.monotonic()
        await channel.unary_unary(f"/{BACK}/Remaining")(b"", timeout=5)
        slowed = time.monotonic() - started
        started = time.monotonic()
        async for _ in channel.unary_stream(f"/{BACK}/RemainingStream")(b"", timeout=5):
            pass
        untouched = time.monotonic() - started

    assert slowed >= 0.3
    assert untouched < 0.3


async def test_fault_hook_can_fail_a_whole_service(tmp_path: Any) -> None:
    back = Back()
    settings = test_settings(
        "inventory",
        f"sqlite:///{tmp_path / 'unused.db'}",
        faults=faults.parse(f"{BACK}=fail:unavailable"),
    )
    async with serving(settings, [back.registration()]) as channel:
        with rpc_fails(grpc.StatusCode.UNAVAILABLE):
            await channel.unary_unary(f"/{BACK}/Remaining")(b"", timeout=5)

    assert back.calls == 0
