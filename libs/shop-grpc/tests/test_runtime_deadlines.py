"""Deadline propagation through two real servers on loopback (shop_grpc.deadlines): every
outbound call spends what is left of the inbound call's budget, and a spent one is not sent.

client -> front (a GrpcServer whose handlers call back) -> back (a GrpcServer that reports
the deadline it saw), the ``hops`` fixture. The front's outbound channel is
shop_grpc.channels.open_channel.
"""

from __future__ import annotations

import asyncio

import grpc

from shop_grpc import deadlines
from shop_grpc.testing import rpc_fails

# A server may see up to ~10 ms more than the timeout its client sent (grpc core's clock);
# the hop margin absorbs that, so a hop still ends before its caller.
CORE_SLACK = deadlines.HOP_MARGIN_SECONDS - 0.012


async def test_outbound_call_gets_what_is_left_of_the_callers_deadline(hops) -> None:
    seen = await hops.relay("Remaining", timeout=1.0)

    assert seen is not None
    assert 0.5 < seen < 1.0 - CORE_SLACK


async def test_streaming_calls_carry_the_deadline_too(hops) -> None:
    replies = hops.client.unary_stream(f"/{hops.front}/RelayStream")(b"", timeout=1.0)

    seen = [hops.seen(reply) async for reply in replies]

    assert len(seen) == 1 and seen[0] is not None
    assert 0.5 < seen[0] < 1.0 - CORE_SLACK


async def test_explicit_shorter_timeout_wins(hops) -> None:
    with deadlines.budget(5.0):
        reply = await hops.back_channel.unary_unary(f"/{hops.back.service}/Remaining")(
            b"", timeout=0.5
        )

    seen = hops.seen(reply)
    assert seen is not None and seen <= 0.5


async def test_spent_budget_fails_fast_without_sending(hops) -> None:
    with deadlines.budget(0.01):
        await asyncio.sleep(0.02)
        with rpc_fails(grpc.StatusCode.DEADLINE_EXCEEDED):
            await hops.back_channel.unary_unary(f"/{hops.back.service}/Remaining")(b"")
        with rpc_fails(grpc.StatusCode.DEADLINE_EXCEEDED):
            async for _ in hops.back_channel.unary_stream(f"/{hops.back.service}/RemainingStream")(
                b""
            ):
                pass

    assert hops.back.calls == 0


async def test_outside_any_call_the_channel_default_applies(hops) -> None:
    reply = await hops.back_channel.unary_unary(f"/{hops.back.service}/Remaining")(b"")

    seen = hops.seen(reply)
    assert seen is not None and 1.5 < seen <= 2.0


async def test_cancelling_the_inbound_call_cancels_its_outbound_call(hops) -> None:
    call = hops.client.unary_unary(f"/{hops.front}/Relay")(b"Hang", timeout=10)
    await asyncio.wait_for(hops.back.hung.wait(), 5)

    call.cancel()

    await asyncio.wait_for(hops.back.cancelled.wait(), 2)
