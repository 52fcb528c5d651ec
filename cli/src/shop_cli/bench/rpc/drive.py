"""The load of `shop bench rpc`: closed-loop calls on one variant at a time, in rounds.

Each round gives every variant one slice of the same length, starting one place later in the
list than the round before, so that whatever else the machine does falls on every variant
alike. A slice reads its server's CPU time before the first call and after the last answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import grpc

from shop_cli.bench import say
from shop_cli.bench.rpc.accounting import Slice
from shop_cli.bench.rpc.variants import Call, Variant
from shop_cli.procfs import cpu_seconds

WARM_UP_SECONDS = 1.0
"""Unmeasured load on each variant first (connections, caches, the first calls' imports),
or one slice when slices are shorter."""


@dataclass(frozen=True)
class LoadPlan:
    """How hard, how long and in what turns the variants are loaded."""

    concurrency: int
    """Calls in flight at once, each worker sending its next call once answered."""
    rounds: int
    slice_seconds: float
    """Each variant's share of a round."""
    export_wait: float
    """Seconds to wait for work that outlives the calls (span exports): after the warm-up,
    so that its share is not counted, and after the last round, before the servers' CPU
    time is read the last time."""


@dataclass(frozen=True)
class Target:
    """A variant ready to load: its call and its server's pid."""

    variant: Variant
    call: Call
    pid: int


@dataclass(frozen=True)
class Measured:
    """What the rounds measured, for shop_cli.bench.rpc.accounting."""

    slices: list[Slice]
    run_cpu: dict[str, float]
    """Each server's CPU seconds from before the first round to after the export wait."""


async def closed_loop(call: Call, concurrency: int, seconds: float) -> tuple[int, int]:
    """`concurrency` workers calling `call` one call after another until `seconds` are up;
    returns (calls answered OK, calls failed)."""
    until = time.monotonic() + seconds
    answered = failed = 0

    async def worker() -> None:
        nonlocal answered, failed
        while time.monotonic() < until:
            try:
                await call()
            except grpc.aio.AioRpcError:
                failed += 1
            else:
                answered += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return answered, failed


async def load_slice(target: Target, concurrency: int, seconds: float, index: int) -> Slice:
    """Round `index`'s slice of load on `target`."""
    cpu_before, started = cpu_seconds(target.pid), time.monotonic()
    answered, failed = await closed_loop(target.call, concurrency, seconds)
    elapsed, cpu_after = time.monotonic() - started, cpu_seconds(target.pid)
    v = target.variant
    return Slice(index, v.key, v.server, elapsed, cpu_after - cpu_before, answered, failed)


def round_order(targets: Sequence[Target], index: int) -> list[Target]:
    """The variants of round `index`: the list rotated by `index` places."""
    shift = index % len(targets)
    return [*targets[shift:], *targets[:shift]]


async def warm_up(targets: Sequence[Target], plan: LoadPlan) -> None:
    """Unmeasured load on every variant, then the export wait: the warm-up's spans go out
    before the count starts, not as work of the first round."""
    for target in targets:
        await closed_loop(target.call, plan.concurrency, min(WARM_UP_SECONDS, plan.slice_seconds))
    await asyncio.sleep(plan.export_wait)


def _server_cpu(pids: Mapping[str, int]) -> dict[str, float]:
    return {server: cpu_seconds(pid) for server, pid in pids.items()}


async def measure(targets: Sequence[Target], plan: LoadPlan) -> Measured:
    """Loads the variants in `plan.rounds` rounds, then waits `plan.export_wait`."""
    pids = {t.variant.server: t.pid for t in targets}
    start = _server_cpu(pids)
    slices: list[Slice] = []
    for index in range(plan.rounds):
        say(f"round {index + 1} of {plan.rounds}")
        for target in round_order(targets, index):
            slices.append(await load_slice(target, plan.concurrency, plan.slice_seconds, index))
    await asyncio.sleep(plan.export_wait)
    end = _server_cpu(pids)
    return Measured(slices, {server: end[server] - start[server] for server in pids})
