"""`shop bench rpc` end to end: its servers started, loaded briefly, every figure printed."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from shop_cli.bench.rpc.variants import COMPARISONS, TITLES, TRACED_SERVERS, VARIANTS

pytestmark = [pytest.mark.e2e, pytest.mark.local_only]  # its own processes, on this machine

NUMBER = r"\d+(?:\.\d+)?"


def test_bench_rpc_prints_the_machine_memory_rates_cpu_ratios_and_spans():
    brief = ["--duration=0.6", "--rounds=2", "--concurrency=2", "--export-wait=0"]
    bench = subprocess.run(
        [sys.executable, "-m", "shop_cli", "bench", "rpc", *brief],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    out = bench.stdout
    assert bench.returncode == 0, out + bench.stderr

    def line(pattern: str) -> None:
        assert re.search(pattern, out, re.M), f"no line matching {pattern!r} in:\n{out}"

    line(rf"^machine\s+{os.cpu_count()} CPUs, \S")
    for title in TITLES.values():
        line(rf"^  {re.escape(title)}\s+{NUMBER} MiB$")
    for v in VARIANTS:
        title = re.escape(TITLES[v.server])
        line(rf"^{re.escape(v.method)}\s+{title}\s+\d+\s+\d+\s+{NUMBER}\s+0$")
    for c in COMPARISONS:
        rate = rf", {NUMBER}x calls/s" if c.with_rate else ""
        spread = rf" \(rounds' middle half {NUMBER}x to {NUMBER}x\)"
        line(rf"^  {re.escape(c.title)}\s+{NUMBER}x server CPU per call{spread}{rate}$")
    for server in TRACED_SERVERS:
        line(rf"^  {re.escape(TITLES[server])}\s+\d+ \({NUMBER} per call\)$")
