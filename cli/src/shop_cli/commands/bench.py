"""`shop bench`: closed-loop load on CreateOrder, then a check that stock and money add up."""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TextIO, TypeVar

import grpc

from shop.inventory.v1 import inventory_pb2
from shop.order.v1 import order_pb2
from shop.payment.v1 import payment_pb2
from shop.user.v1 import user_pb2
from shop_cli import consistency, output, views
from shop_cli.arguments import (
    add_timeout_flag,
    command,
    default_expiry,
    expiry,
    positive_float,
    positive_int,
    run_async,
)
from shop_cli.commands.orders import FINAL, TEST_CARD, card, create_request, list_all
from shop_cli.money import to_proto
from shop_cli.paging import PAGE_SIZE, collect
from shop_cli.stats import percentile, throughput
from shop_cli.targets import Clients, add_target_flags
from shop_grpc import registry

DECLINE_CARD = "4000000000000002"
PRICES = {"a": 300, "b": 750, "c": 1999}
INITIAL_STOCK = 10_000_000
MAX_QUANTITY = 3
# Reads after the run fan out this wide; enough to be quick, few enough not to be load.
CHECK_CONCURRENCY = 16
SHOWN_VIOLATIONS = 20

T = TypeVar("T")


def register(subparsers: Any) -> None:
    parser = command(subparsers, "bench", run_async(run), "load the suite, then check consistency")
    parser.add_argument(
        "--clients", type=positive_int, default=8, help="concurrent workers (default 8)"
    )
    parser.add_argument(
        "--duration", type=positive_float, default=30.0, metavar="SECONDS", help="default 30"
    )
    parser.add_argument(
        "--decline-rate",
        type=float,
        default=0.05,
        metavar="FRACTION",
        help="share of orders paid with a card that is declined (default 0.05)",
    )
    parser.add_argument(
        "--settle-timeout",
        type=positive_float,
        default=60.0,
        metavar="SECONDS",
        help="how long orders may take to become final after the run (default 60)",
    )
    parser.add_argument("--seed", type=int, help="random seed, for a repeatable mix of orders")
    add_target_flags(parser, *registry.names())
    add_timeout_flag(parser)


@dataclass(frozen=True)
class Fixture:
    """What the run created for itself: products only it orders, and its one customer."""

    product_ids: list[str]
    user_id: str
    initial: dict[str, consistency.StockFacts]


@dataclass(frozen=True)
class Call:
    latency: float
    code: str
    order: order_pb2.Order | None


@dataclass
class Progress:
    calls: list[Call] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# -- seeding --------------------------------------------------------------


async def seed(clients: Clients, call_timeout: float) -> Fixture:
    suffix = secrets.token_hex(4)
    product_ids = [f"bench-{suffix}-{name}" for name in PRICES]
    for product_id, price in zip(product_ids, PRICES.values(), strict=True):
        await clients.inventory.CreateProduct(
            inventory_pb2.CreateProductRequest(
                product=inventory_pb2.Product(
                    product_id=product_id, title=f"Bench {product_id}", price=to_proto(price, "USD")
                ),
                request_id=str(uuid.uuid4()),
            ),
            timeout=call_timeout,
        )
    key = str(uuid.uuid4())
    imported = await clients.inventory.ImportStock(
        iter(
            inventory_pb2.ImportStockRequest(request_id=key, product_id=p, quantity=INITIAL_STOCK)
            for p in product_ids
        ),
        timeout=call_timeout,
    )
    user = await clients.users.CreateUser(
        user_pb2.CreateUserRequest(
            user=user_pb2.User(username=f"bench-{suffix}", email=f"bench-{suffix}@example.com"),
            password=secrets.token_urlsafe(16),
            request_id=str(uuid.uuid4()),
        ),
        timeout=call_timeout,
    )
    initial = {
        level.product_id: consistency.StockFacts(level.available, level.reserved)
        for level in imported.levels
    }
    return Fixture(product_ids, user.user_id, initial)


# -- load -----------------------------------------------------------------


def random_request(
    rng: random.Random, fixture: Fixture, decline_rate: float
) -> order_pb2.CreateOrderRequest:
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
    args: argparse.Namespace,
) -> None:
    while time.monotonic() < deadline:
        request = random_request(rng, fixture, args.decline_rate)
        started = time.perf_counter()
        try:
            order = await clients.orders.CreateOrder(request, timeout=args.timeout)
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


async def load(clients: Clients, fixture: Fixture, args: argparse.Namespace) -> Progress:
    rng = random.Random(args.seed)
    progress = Progress()
    deadline = progress.started + args.duration
    reporter = asyncio.create_task(report_progress(progress, args.duration, sys.stderr))
    try:
        await asyncio.gather(
            *(
                worker(clients, fixture, progress, deadline, random.Random(rng.random()), args)
                for _ in range(args.clients)
            )
        )
    finally:
        reporter.cancel()
        await asyncio.gather(reporter, return_exceptions=True)
    return progress


# -- results --------------------------------------------------------------


def load_report(calls: list[Call], seconds: float) -> str:
    ok = [c.latency * 1000 for c in calls if c.code == "OK"]
    statuses = Counter(views.order_status(c.order) for c in calls if c.order is not None)
    codes = Counter(c.code for c in calls)
    rows: list[tuple[str, object]] = [
        ("calls", f"{len(calls)} in {seconds:.1f} s"),
        ("throughput", f"{throughput(len(calls), seconds):.1f} orders/s"),
        (
            "latency (OK)",
            "  ".join(f"p{q} {percentile(ok, q):.1f} ms" for q in (50, 95, 99)) if ok else "-",
        ),
        ("order status", _counts(statuses)),
        ("grpc status", _counts(codes)),
    ]
    return output.fields(rows)


def _counts(counter: Counter[str]) -> str:
    return "  ".join(f"{name} {count}" for name, count in sorted(counter.items())) or "-"


async def bounded(items: Iterable[T], call: Callable[[T], Awaitable[Any]]) -> list[Any]:
    limit = asyncio.Semaphore(CHECK_CONCURRENCY)

    async def one(item: T) -> Any:
        async with limit:
            return await call(item)

    return list(await asyncio.gather(*(one(item) for item in items)))


async def settle(
    clients: Clients, fixture: Fixture, progress: Progress, args: argparse.Namespace
) -> list[order_pb2.Order]:
    """Every order of the bench user, once final or when the settle call_timeout runs out.

    ListOrders also finds orders whose CreateOrder answer was lost (a deadline,
    say) but which the service went on to place.
    """
    orders = {c.order.order_id: c.order for c in progress.calls if c.order is not None}
    for order in await list_all(clients, fixture.user_id, args.timeout):
        orders.setdefault(order.order_id, order)
    deadline = time.monotonic() + args.settle_timeout
    while True:
        pending = [o.order_id for o in orders.values() if o.status not in FINAL]
        if not pending or time.monotonic() > deadline:
            return list(orders.values())
        say(f"waiting for {len(pending)} orders to become final")
        for order in await bounded(pending, lambda i: _get_order(clients, i, args.timeout)):
            orders[order.order_id] = order
        await asyncio.sleep(0.5)


async def _get_order(clients: Clients, order_id: str, call_timeout: float) -> order_pb2.Order:
    request = order_pb2.GetOrderRequest(order_id=order_id)
    order: order_pb2.Order = await clients.orders.GetOrder(request, timeout=call_timeout)
    return order


async def _payments_of(
    clients: Clients, order_id: str, call_timeout: float
) -> list[payment_pb2.Payment]:
    async def fetch(token: str) -> tuple[list[payment_pb2.Payment], str]:
        request = payment_pb2.ListPaymentsRequest(
            order_id=order_id, page_size=PAGE_SIZE, page_token=token
        )
        page = await clients.payments.ListPayments(request, timeout=call_timeout)
        return list(page.payments), page.next_page_token

    return await collect(fetch)


def order_facts(order: order_pb2.Order) -> consistency.OrderFacts:
    quantities: dict[str, int] = {}
    for line in order.lines:
        quantities[line.product_id] = quantities.get(line.product_id, 0) + line.quantity
    return consistency.OrderFacts(
        order_id=order.order_id,
        status=views.order_status(order),
        total_minor=order.total.amount_minor,
        currency=order.total.currency_code,
        quantities=quantities,
        payment_id=order.payment_id,
    )


def payment_facts(payment: payment_pb2.Payment) -> consistency.PaymentFacts:
    return consistency.PaymentFacts(
        payment_id=payment.payment_id,
        status=views.payment_status(payment),
        amount_minor=payment.amount.amount_minor,
        currency=payment.amount.currency_code,
        refunded_minor=payment.refunded.amount_minor,
    )


async def check(
    clients: Clients, fixture: Fixture, orders: list[order_pb2.Order], call_timeout: float
) -> tuple[list[consistency.StockCheck], list[consistency.OrderFacts], list[consistency.Violation]]:
    levels = await bounded(
        fixture.product_ids,
        lambda p: clients.inventory.GetStock(
            inventory_pb2.GetStockRequest(product_id=p), timeout=call_timeout
        ),
    )
    final = {lv.product_id: consistency.StockFacts(lv.available, lv.reserved) for lv in levels}
    facts = [order_facts(o) for o in orders]
    listed = await bounded(facts, lambda o: _payments_of(clients, o.order_id, call_timeout))
    payments = {
        o.order_id: [payment_facts(p) for p in found]
        for o, found in zip(facts, listed, strict=True)
    }
    checks = consistency.stock_checks(fixture.initial, final, facts)
    return checks, facts, consistency.all_violations(checks, facts, payments)


def consistency_report(
    checks: list[consistency.StockCheck],
    orders: list[consistency.OrderFacts],
    violations: list[consistency.Violation],
) -> str:
    stock = output.table(
        ["PRODUCT", "INITIAL", "FINAL", "TAKEN", "CONFIRMED UNITS", "RESERVED", "RESULT"],
        [
            (
                c.product_id,
                c.initial_available,
                c.final_available,
                c.taken,
                c.confirmed_units,
                c.reserved,
                "ok" if c.ok else "VIOLATION",
            )
            for c in checks
        ],
    )
    broken = {v.subject for v in violations if v.rule not in ("stock", "reserved")}
    parts = [stock, "", f"orders checked: {len(orders)}, with violations: {len(broken)}"]
    if violations:
        shown = violations[:SHOWN_VIOLATIONS]
        parts += [
            "",
            output.table(
                ["SUBJECT", "RULE", "DETAIL"], [(v.subject, v.rule, v.detail) for v in shown]
            ),
        ]
        if len(violations) > len(shown):
            parts.append(f"... and {len(violations) - len(shown)} more")
    parts.append(f"consistency violations: {len(violations)}")
    return "\n".join(parts)


async def run(args: argparse.Namespace) -> int:
    async with Clients(args) as clients:
        fixture = await seed(clients, args.timeout)
        say(f"seeded {', '.join(fixture.product_ids)} and user {fixture.user_id}")
        say(f"running {args.clients} clients for {args.duration:g} s")
        progress = await load(clients, fixture, args)
        seconds = progress.elapsed
        print(load_report(progress.calls, seconds), flush=True)
        orders = await settle(clients, fixture, progress, args)
        checks, facts, violations = await check(clients, fixture, orders, args.timeout)
    print()
    print(consistency_report(checks, facts, violations))
    return 1 if violations else 0
