"""`shop bench rpc` end to end: its servers started, loaded briefly, every figure printed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

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


def children_of(pid: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                found.add(int(entry))
    return found


def running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def test_bench_rpc_stopped_by_sigterm_stops_the_servers_it_started():
    bench = subprocess.Popen(
        [sys.executable, "-m", "shop_cli", "bench", "rpc", "--duration=60"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        servers: set[int] = set()
        while len(servers) < len(TITLES) and time.monotonic() < deadline:
            time.sleep(0.5)
            servers |= children_of(bench.pid)
        assert len(servers) >= len(TITLES), servers

        bench.terminate()  # as `timeout` or a supervisor stops it

        assert bench.wait(timeout=60) == 143
        assert [pid for pid in servers if running(pid)] == []
    finally:
        bench.kill()
        bench.wait()
