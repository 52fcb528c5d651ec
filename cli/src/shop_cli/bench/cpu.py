"""The CPU accounting phase: what each service's processes spent, from their own counters.

A local suite publishes its service processes' pids in its data directory
(shop_cli.pidfiles). The meter reads each process's CPU time (shop_cli.procfs) when the load
starts and again once the settle phase has seen the run's orders final, so the window holds
the load, the saga work that finishes after it, and the settle phase's own reads; the report
divides it by the orders that became CONFIRMED. Without pid files (a suite elsewhere) the
figures are unavailable and the run goes on without them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from shop_cli import pidfiles, procfs
from shop_grpc import registry


@dataclass(frozen=True)
class CpuSample:
    """Each process's CPU time at one moment."""

    taken: float
    """time.monotonic() when it was read."""
    seconds: dict[str, float]
    """Instance name -> CPU seconds used since it started; a process that had ended is
    missing."""


@dataclass(frozen=True)
class ServiceCpu:
    """What one service's processes spent in a window."""

    service: str
    processes: int
    """How many processes (replicas) were counted."""
    seconds: float
    """Their CPU time (user + system) in the window, together, in seconds."""


@dataclass(frozen=True)
class CpuUsage:
    """What every service spent in a window."""

    window_seconds: float
    """Wall-clock length of the window."""
    services: list[ServiceCpu]
    """The suite's order first (shop_grpc.registry), then any other service by name."""
    lost: list[str]
    """Instances that ended within the window and so were not counted."""


@dataclass(frozen=True)
class Unavailable:
    """Why no CPU figures could be read."""

    reason: str


def sample(processes: dict[str, int]) -> CpuSample:
    """The CPU time of `processes` (instance name -> pid) now."""
    seconds: dict[str, float] = {}
    for instance, pid in processes.items():
        try:
            seconds[instance] = procfs.cpu_seconds(pid)
        except ProcessLookupError:
            continue
    return CpuSample(time.monotonic(), seconds)


def usage(start: CpuSample, end: CpuSample) -> CpuUsage:
    """What each service spent between two samples of the same processes."""
    counted = [i for i in start.seconds if i in end.seconds]
    spent: dict[str, list[float]] = {}
    for instance in counted:
        delta = end.seconds[instance] - start.seconds[instance]
        spent.setdefault(pidfiles.service_of(instance), []).append(delta)
    known = [name for name in registry.names() if name in spent]
    ordered = known + sorted(set(spent) - set(known))
    return CpuUsage(
        window_seconds=end.taken - start.taken,
        services=[ServiceCpu(name, len(spent[name]), sum(spent[name])) for name in ordered],
        lost=sorted(set(start.seconds) - set(end.seconds)),
    )


class CpuMeter:
    """The running service processes a suite published in `data_dir`, read at a window's
    start and end."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        published = pidfiles.published(data_dir)
        self.processes = {name: pid for name, pid in published.items() if procfs.running(pid)}
        self._start: CpuSample | None = None

    def start(self) -> None:
        """Opens the window."""
        self._start = sample(self.processes)

    def stop(self) -> CpuUsage | Unavailable:
        """Closes the window: what each service spent since start()."""
        if not self.processes:
            folder = pidfiles.directory(self.data_dir)
            return Unavailable(
                f"no running service process is published in {folder} (a suite started on "
                f"this machine with `shop up --data-dir {self.data_dir}` publishes them)"
            )
        if self._start is None:
            raise RuntimeError("stop() before start()")
        return usage(self._start, sample(self.processes))
