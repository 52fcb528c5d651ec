"""The report phase: what the load and the check found, as text for people."""

from __future__ import annotations

from collections import Counter

from shop.order.v1 import order_pb2
from shop_cli import output, views
from shop_cli.bench.check import Findings
from shop_cli.bench.cpu import CpuUsage, Unavailable
from shop_cli.bench.load import Call
from shop_cli.stats import percentile, throughput

SHOWN_VIOLATIONS = 20
"""Violations listed one by one; the rest are only counted."""


def load_report(calls: list[Call], seconds: float) -> str:
    """Calls, throughput, latency percentiles of the OK calls, order and gRPC status counts;
    `seconds` is how long the load ran."""
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


def cpu_report(measured: CpuUsage | Unavailable, orders: list[order_pb2.Order]) -> str:
    """Each service's CPU milliseconds per CONFIRMED order, and their total, or why there are
    none; `orders` are the run's orders as the settle phase last saw them."""
    if isinstance(measured, Unavailable):
        return output.fields([("cpu per order", f"unavailable: {measured.reason}")])
    confirmed = sum(1 for order in orders if views.order_status(order) == "CONFIRMED")
    rows: list[tuple[str, object]] = [
        ("cpu counted", "user + system time of each service's processes (/proc/<pid>/stat)"),
        (
            "cpu window",
            f"start of the load to end of the settle phase, {measured.window_seconds:.1f} s; "
            f"divided by the {confirmed} orders that became CONFIRMED",
        ),
    ]
    rows += [
        (
            f"cpu {used.service}",
            f"{_per_order(used.seconds, confirmed)}  "
            f"({used.seconds:.2f} s, {used.processes} process{'es' * (used.processes > 1)})",
        )
        for used in measured.services
    ]
    total = sum(used.seconds for used in measured.services)
    rows.append(("cpu total", _per_order(total, confirmed)))
    if measured.lost:
        rows.append(("not counted", f"ended during the run: {', '.join(measured.lost)}"))
    return output.fields(rows)


def _per_order(seconds: float, orders: int) -> str:
    return f"{seconds * 1000 / orders:.1f} ms per order" if orders else "- (no order CONFIRMED)"


def consistency_report(findings: Findings) -> str:
    """A table of the stock checks, the orders checked, the first SHOWN_VIOLATIONS violations
    and their count."""
    checks, violations = findings.checks, findings.violations
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
    parts = [stock, "", f"orders checked: {len(findings.orders)}, with violations: {len(broken)}"]
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
