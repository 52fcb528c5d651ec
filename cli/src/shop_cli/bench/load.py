"""The load phase: closed-loop workers, each placing one order after another until time is up."""

from __future__ import annotations

import asyncio
import random
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import TextIO

import grpc

from shop.order.v1 import order_pb2
from shop_cli.arguments import default_expiry, expiry
from shop_cli.bench.seed import Fixture
from shop_cli.commands.orders import TEST_CARD, card, create_request
from shop_cli.stats import throughput
from shop_cli.targets import Clients

DECLINE_CARD = "4000000000000002"
MAX_QUANTITY = 3
"""Most units of one product in an order."""


@dataclass(frozen=True)
class LoadPlan:
    """How hard and how long to load the suite."""

    clients: int
    """Concurrent workers, each waiting for its answer before the next order."""
    duration: float
    """Seconds during which workers start new orders."""
    decline_rate: float
    """Share of orders (0 to 1) paid with a card the processor declines."""
    call_timeout: float
    """Deadline of each CreateOrder, in seconds."""
    seed: int | None = None
    """Random seed, for a repeatable mix of orders; None: a new mix each run."""


@dataclass(frozen=True)
class Call:
    """One CreateOrder as a worker saw it."""

    latency: float
    """Seconds from sending the request to its answer."""
    code: str
    """The gRPC status code's name, "OK" when the order came back."""
    order: order_pb2.Order | None


@dataclass
class Progress:
    """The calls made so far, appended to by every worker."""

    calls: list[Call] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


def random_request(
    rng: random.Random, fixture: Fixture, decline_rate: float
) -> order_pb2.CreateOrderRequest:
    """An order of 1 to all of the run's products, 1 to MAX_QUANTITY units each."""
    count = rng.randint(1, len(fixture.product_ids))
    items = [(p, rng.randint(1, MAX_QUANTITY)) for p in rng.sample(fixture.product_ids, count)]
    number = DECLINE_CARD if rng.random() < decline_rate else TEST_CARD
    return create_request(
        fixture.user_id, items, card(number, expiry(default_expiry()), "123"), str(uuid.uuid4())
    )


async def worker(
    clients: Clients,
    fixture: Fixture,
    progress: Progress,
    deadline: float,
    rng: random.Random,
    plan: LoadPlan,
) -> None:
    """Places orders one after another until `deadline` (time.monotonic()), recording each."""
    while time.monotonic() < deadline:
        request = random_request(rng, fixture, plan.decline_rate)
        started = time.perf_counter()
        try:
            order = await clients.orders.CreateOrder(request, timeout=plan.call_timeout)
        except grpc.aio.AioRpcError as exc:
            progress.calls.append(Call(time.perf_counter() - started, exc.code().name, None))
        else:
            progress.calls.append(Call(time.perf_counter() - started, "OK", order))


async def report_progress(progress: Progress, duration: float, stream: TextIO) -> None:
    """Once a second on a terminal (rewriting one line), every 5 s in a log."""
    live = stream.isatty()
    interval = 1.0 if live else 5.0
    try:
        while True:
            await asyncio.sleep(interval)
            line = (
                f"{min(progress.elapsed, duration):5.1f}s  {len(progress.calls):7d} orders  "
                f"{throughput(len(progress.calls), progress.elapsed):8.1f} orders/s"
            )
            stream.write(f"\r{line}" if live else f"{line}\n")
            stream.flush()
    finally:
        if live:
            stream.write("\n")
            stream.flush()


async def load(clients: Clients, fixture: Fixture, plan: LoadPlan) -> Progress:
    """Runs `plan.clients` workers for `plan.duration` seconds; returns every call they made.

    A failed call is recorded with its status code, not raised.
    """
    rng = random.Random(plan.seed)
    progress = Progress()
    deadline = progress.started + plan.duration
    reporter = asyncio.create_task(report_progress(progress, plan.duration, sys.stderr))
    try:
        await asyncio.gather(
            *(
                worker(clients, fixture, progress, deadline, random.Random(rng.random()), plan)
                for _ in range(plan.clients)
            )
        )
    finally:
        reporter.cancel()
        await asyncio.gather(reporter, return_exceptions=True)
    return progress
