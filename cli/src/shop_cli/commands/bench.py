"""`shop bench`: closed-loop load on CreateOrder, then a check that stock and money add up.

This module reads the arguments and runs the phases of `shop_cli.bench` in order: seed, load
(progress on stderr, the load report on stdout), settle, check, then the reports: the CPU
the services' processes spent per confirmed order (counted from the start of the load until
the settle phase ends, when the suite's pid files are in --data-dir) and consistency.
Exit status 1 when the check found a violation.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from shop_cli.arguments import add_timeout_flag, command, positive_float, positive_int, run_async
from shop_cli.bench import say
from shop_cli.bench.check import check
from shop_cli.bench.cpu import CpuMeter
from shop_cli.bench.load import LoadPlan, load
from shop_cli.bench.report import consistency_report, cpu_report, load_report
from shop_cli.bench.seed import seed
from shop_cli.bench.settle import settle
from shop_cli.commands import bench_rpc
from shop_cli.targets import CLIENT_SERVICES, Clients, add_target_flags
from shop_cli.tls import data_directory


def register(subparsers: Any) -> None:
    parser = command(
        subparsers,
        "bench",
        run_async(run),
        "load the suite, then report its services' CPU per order and check consistency "
        "(`shop bench rpc`: the cost of a call, measured on servers of its own)",
    )
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
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="the local suite's data directory, whose pid files give the services' CPU time "
        "and whose client certificate the benchmark presents (default $SHOP_DATA_DIR, else "
        ".shop)",
    )
    add_target_flags(parser, *CLIENT_SERVICES)
    add_timeout_flag(parser)
    # Optional, so that `shop bench` with flags alone loads the suite as it always has.
    benchmarks = parser.add_subparsers(
        dest="benchmark",
        metavar="BENCHMARK",
        required=False,
        help="another benchmark instead of loading the suite",
    )
    bench_rpc.register(benchmarks)


def load_plan(args: argparse.Namespace) -> LoadPlan:
    return LoadPlan(
        clients=args.clients,
        duration=args.duration,
        decline_rate=args.decline_rate,
        call_timeout=args.timeout,
        seed=args.seed,
    )


async def run(args: argparse.Namespace) -> int:
    plan = load_plan(args)
    async with Clients(args) as clients:
        fixture = await seed(clients, args.timeout)
        say(f"seeded {', '.join(fixture.product_ids)} and user {fixture.user_id}")
        say(f"running {plan.clients} clients for {plan.duration:g} s")
        meter = CpuMeter(data_directory(os.environ, args.data_dir))
        meter.start()
        progress = await load(clients, fixture, plan)
        seconds = progress.elapsed
        print(load_report(progress.calls, seconds), flush=True)
        orders = await settle(clients, fixture, progress, args.timeout, args.settle_timeout)
        print(cpu_report(meter.stop(), orders), flush=True)
        findings = await check(clients, fixture, orders, args.timeout)
    print()
    print(consistency_report(findings))
    return 1 if findings.violations else 0
