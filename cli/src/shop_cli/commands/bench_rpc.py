"""`shop bench rpc`: what a call costs the servers, the shop runtime's against bare grpc.aio.

In one run, on this machine: servers started as child processes of this one (a bare
grpc.aio server, the shop runtime with no service, and the user service three times: tracing
off, at 100 % and at 10 % parent-based, exporting to an OTLP sink this process runs), all with
the same mTLS certificates made for the run; then load from this process on one variant at a
time, alternating (shop_cli.bench.rpc). Prints the machine first, then each server's idle
memory, each variant's rate and server CPU per call, and their ratios.

Exit status 1 when a call failed: the figures would not be of the calls they name.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shop_cli import procfs
from shop_cli.arguments import add_timeout_flag, command, positive_float, positive_int, run_async
from shop_cli.bench import say
from shop_cli.bench.rpc import drive, report, servers, sink, variants
from shop_cli.bench.rpc.accounting import Figures, figures

READY_SECONDS = 60.0
"""How long the servers may take to start, together, on a busy machine."""
# The SDK's batch span processor exports at least every 5 s (OTEL_BSP_SCHEDULE_DELAY).
DEFAULT_EXPORT_WAIT = 6.0


def register(subparsers: Any) -> None:
    parser = command(
        subparsers,
        "rpc",
        run_async(run),
        "server CPU per call: a bare grpc.aio server against the shop runtime, GetUser "
        "against Health/Check, tracing off against on (servers started here)",
    )
    parser.add_argument(
        "--concurrency", type=positive_int, default=8, help="calls in flight (default 8)"
    )
    parser.add_argument(
        "--duration",
        type=positive_float,
        default=10.0,
        metavar="SECONDS",
        help="load on each variant, split over the rounds (default 10)",
    )
    parser.add_argument(
        "--rounds",
        type=positive_int,
        default=20,
        # Short turns, many times over: a burst of other work on the machine lands on every
        # variant's turns alike rather than on one variant's long one.
        help="times every variant takes its turn (default 20)",
    )
    parser.add_argument(
        "--export-wait",
        type=float,
        default=DEFAULT_EXPORT_WAIT,
        metavar="SECONDS",
        help="after the warm-up and after the load, how long traced servers get to export "
        f"their last spans before CPU is read (default {DEFAULT_EXPORT_WAIT:g}: the SDK "
        "exports at least every 5 s)",
    )
    add_timeout_flag(parser)


def load_plan(args: argparse.Namespace) -> drive.LoadPlan:
    return drive.LoadPlan(
        concurrency=args.concurrency,
        rounds=args.rounds,
        slice_seconds=args.duration / args.rounds,
        export_wait=max(args.export_wait, 0.0),
    )


@dataclass(frozen=True)
class Outcome:
    """What one run measured."""

    resident: dict[str, int]
    """Server name -> bytes of VmRSS once SERVING, before any call."""
    measured: drive.Measured
    """The slices and each server's CPU over the run."""
    results: dict[str, Figures]
    """Variant key -> its figures."""
    spans: dict[str, int]
    """Server name -> spans it exported while measured."""


async def measure(plan: drive.LoadPlan, call_timeout: float) -> Outcome:
    """Starts the servers, loads them per `plan`, stops them; every file lives in a
    temporary directory, removed at the end."""
    with tempfile.TemporaryDirectory(prefix="shop-bench-rpc-") as work:
        work_dir = Path(work)
        identity = variants.make_certificates(work_dir)
        async with sink.receiving() as spans:
            plans = variants.server_plans(work_dir, spans)
            say(f"starting {len(plans)} servers")
            async with servers.running(plans, work_dir, identity, READY_SECONDS) as started:
                resident = {s.plan.name: procfs.resident_bytes(s.pid) for s in started}
                calls = await variants.calls(started, call_timeout)
                pids = {s.plan.name: s.pid for s in started}
                targets = [drive.Target(v, calls[v.key], pids[v.server]) for v in variants.VARIANTS]
                say("warming up")
                await drive.warm_up(targets, plan)
                spans.spans.clear()
                measured = await drive.measure(targets, plan)
    results = figures(measured.slices, measured.run_cpu)
    return Outcome(resident, measured, results, dict(spans.spans))


def print_report(plan: drive.LoadPlan, outcome: Outcome) -> None:
    parts = [
        report.method_report(plan),
        report.memory_report(outcome.resident),
        report.figures_report(outcome.results),
        report.ratios_report(outcome.results, outcome.measured),
        report.spans_report(outcome.spans, outcome.results),
    ]
    print("\n\n".join(parts), flush=True)


async def run(args: argparse.Namespace) -> int:
    print(report.machine_report(procfs.machine()), flush=True)
    plan = load_plan(args)
    outcome = await measure(plan, args.timeout)
    print_report(plan, outcome)
    failed = sum(f.failures for f in outcome.results.values())
    if failed:
        say(f"error: {failed} calls failed; see the FAILED column")
    return 1 if failed else 0
