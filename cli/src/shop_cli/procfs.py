"""What Linux's /proc says about a process and the machine: CPU time, resident memory, CPUs.

A process's own counters measure what it spent, whatever else the machine was doing, which
makes them the figures to compare on a shared or noisy machine; wall-clock rates are not.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
# /proc/<pid>/stat fields, counted from 1 as proc(5) does; the list split after the command
# name starts at field 3.
_FIRST_FIELD_AFTER_COMMAND = 3
_UTIME_FIELD = 14
_STIME_FIELD = 15


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far, all its threads together, in
    seconds (steps of 1/SC_CLK_TCK, 10 ms on most systems).

    Raises ProcessLookupError when there is no such process.
    """
    text = _read(pid, "stat")
    # The command name (field 2) is in parentheses and may itself hold spaces or ")".
    fields = text.rpartition(")")[2].split()
    utime = int(fields[_UTIME_FIELD - _FIRST_FIELD_AFTER_COMMAND])
    stime = int(fields[_STIME_FIELD - _FIRST_FIELD_AFTER_COMMAND])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def resident_bytes(pid: int) -> int:
    """The process's resident set size (VmRSS), in bytes.

    Raises ProcessLookupError when there is no such process, or it has exited and holds no
    memory any more.
    """
    for line in _read(pid, "status").splitlines():
        name, _, value = line.partition(":")
        if name == "VmRSS":
            kibibytes = int(value.split()[0])  # the kernel writes "<n> kB", meaning KiB
            return kibibytes * 1024
    raise ProcessLookupError(pid)


def running(pid: int) -> bool:
    """Whether a process with this pid exists (a zombie counts: it has not been reaped)."""
    return (PROC / str(pid)).is_dir()


def _read(pid: int, name: str) -> str:
    try:
        return (PROC / str(pid) / name).read_text()
    except FileNotFoundError:
        raise ProcessLookupError(pid) from None


@dataclass(frozen=True)
class Machine:
    """The CPUs benchmark figures were measured on."""

    cpus: int
    """Processors the kernel lists in /proc/cpuinfo (online CPUs)."""
    usable: int
    """Of those, how many this process may run on (its CPU affinity)."""
    model: str
    """The first processor's model name, e.g. "AMD EPYC 7B13"."""

    def describe(self) -> str:
        usable = "" if self.usable == self.cpus else f", {self.usable} usable here"
        return f"{self.cpus} CPUs{usable}, {self.model}"


# Where architectures put the model in /proc/cpuinfo: x86 first, then ARM and others.
_MODEL_KEYS = ("model name", "Model", "cpu model", "Hardware", "cpu")


def machine(cpuinfo: str | None = None) -> Machine:
    """The machine as /proc/cpuinfo (or `cpuinfo`, its text) describes it."""
    text = (PROC / "cpuinfo").read_text() if cpuinfo is None else cpuinfo
    entries = [line.partition(":") for line in text.splitlines()]
    values = [(key.strip(), value.strip()) for key, _, value in entries]
    # A kernel that lists no "processor" entries still counts its CPUs for os.cpu_count().
    cpus = sum(1 for key, _ in values if key == "processor") or os.cpu_count() or 1
    first: dict[str, str] = {}
    for key, value in values:
        first.setdefault(key, value)
    model = next((first[key] for key in _MODEL_KEYS if first.get(key)), "unknown model")
    return Machine(cpus=cpus, usable=len(os.sched_getaffinity(0)), model=model)
