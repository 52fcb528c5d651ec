"""What `shop bench rpc` measured, as text for people."""

from __future__ import annotations

from collections.abc import Mapping

from shop_cli import output
from shop_cli.bench.rpc.accounting import Figures, middle_half, ratio, round_ratios
from shop_cli.bench.rpc.drive import LoadPlan, Measured
from shop_cli.bench.rpc.variants import COMPARISONS, TITLES, TRACED_SERVERS, VARIANTS
from shop_cli.procfs import Machine

MIB = 1024 * 1024


def machine_report(machine: Machine) -> str:
    return output.fields([("machine", machine.describe())])


def method_report(plan: LoadPlan) -> str:
    """How the load was made and what the CPU figures count."""
    rounds = f"{plan.rounds} round{'s' * (plan.rounds > 1)}"
    load = (
        f"{plan.concurrency} calls in flight from one grpc.aio client; each variant "
        f"{plan.rounds * plan.slice_seconds:g} s in all, in {rounds} of "
        f"{plan.slice_seconds:g} s slices, the variants taking turns"
    )
    counted = (
        "each server's own user + system time (/proc/<pid>/stat) in its slices, plus what "
        f"it did between them (span exports; {plan.export_wait:g} s allowed after the last)"
    )
    return output.fields([("load", load), ("server cpu", counted)])


def memory_report(resident: Mapping[str, int]) -> str:
    """`resident`: server name -> bytes of VmRSS once it was SERVING, before any call."""
    rows = [(TITLES[name], f"{size / MIB:.1f} MiB") for name, size in resident.items()]
    return "idle RSS (VmRSS once serving, before any call)\n" + _indented(output.fields(rows))


def figures_report(measured: Mapping[str, Figures]) -> str:
    """A row per variant: calls, rate, server CPU per call in µs, failures."""
    rows = [
        (
            v.method,
            TITLES[v.server],
            measured[v.key].calls,
            f"{measured[v.key].calls_per_second:.0f}",
            f"{measured[v.key].cpu_per_call * 1e6:.1f}",
            measured[v.key].failures,
        )
        for v in VARIANTS
    ]
    headers = ["CALL", "SERVER", "CALLS", "CALLS/S", "CPU µs/CALL", "FAILED"]
    return output.table(headers, rows)


def ratios_report(results: Mapping[str, Figures], measured: Measured) -> str:
    """The comparisons of variants.COMPARISONS, as "1.23x": server CPU per call over the whole
    run, with the middle half of the same ratio taken round by round (how much the machine's
    noise moved it), and calls per second where the comparison asks for it."""
    rows = []
    for c in COMPARISONS:
        top, bottom = results[c.numerator], results[c.denominator]
        shown = f"{_times(ratio(top.cpu_per_call, bottom.cpu_per_call))} server CPU per call"
        by_round = round_ratios(measured.slices, measured.run_cpu, c.numerator, c.denominator)
        spread = middle_half(by_round)
        if spread is not None:
            shown += f" (rounds' middle half {_times(spread[0])} to {_times(spread[1])})"
        if c.with_rate:
            rate = ratio(top.calls_per_second, bottom.calls_per_second)
            shown += f", {_times(rate)} calls/s"
        rows.append((c.title, shown))
    return "ratios\n" + _indented(output.fields(rows))


def _times(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def spans_report(spans: Mapping[str, int], measured: Mapping[str, Figures]) -> str:
    """What each traced server exported (`spans`, by server name) while it was measured, and
    how many spans that is per call it answered."""
    rows = []
    for server in TRACED_SERVERS:
        calls = sum(measured[v.key].calls for v in VARIANTS if v.server == server)
        count = spans.get(server, 0)
        per_call = f" ({count / calls:.2f} per call)" if calls else ""
        rows.append((TITLES[server], f"{count}{per_call}"))
    return "spans received by the OTLP sink\n" + _indented(output.fields(rows))


def _indented(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())
