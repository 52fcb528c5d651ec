"""Pid files of a local suite's service processes, so tools on the machine can find them.

The suite (`shop up`, shop_cli.suite) writes ``<data dir>/pids/<service>@<address>.pid`` for
every service process it starts, replicas included, and removes it once it has reaped the
process. `shop bench` reads them to count what each service spent in CPU time. A file left by
a suite that was killed outright may name a process that has ended, or a pid since reused:
readers check that the process still runs, and can do no more than that.
"""

from __future__ import annotations

import os
from pathlib import Path

PIDS_DIR = "pids"
SUFFIX = ".pid"


def directory(data_dir: Path) -> Path:
    """Where a suite with `data_dir` publishes its pids."""
    return data_dir / PIDS_DIR


def instance_name(service: str, address: str) -> str:
    """A service process's name in the pid files: ``order@127.0.0.1:50051``."""
    return f"{service}@{address}"


def service_of(instance: str) -> str:
    """The service an instance name belongs to: ``order`` for ``order@127.0.0.1:50051``."""
    return instance.partition("@")[0]


def publish(data_dir: Path, instance: str, pid: int) -> None:
    """Writes `instance`'s pid file, replacing an older one of the same name."""
    folder = directory(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{instance}{SUFFIX}"
    # Written aside, then renamed over: a reader never sees half a number.
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(f"{pid}\n")
    os.replace(partial, path)


def withdraw(data_dir: Path, instance: str) -> None:
    """Removes `instance`'s pid file, if there is one."""
    (directory(data_dir) / f"{instance}{SUFFIX}").unlink(missing_ok=True)


def published(data_dir: Path) -> dict[str, int]:
    """Instance name -> pid of every pid file under `data_dir`, sorted by name; empty when
    there are none. A file that does not hold a pid is skipped."""
    folder = directory(data_dir)
    if not folder.is_dir():
        return {}
    found: dict[str, int] = {}
    for path in sorted(folder.glob(f"*{SUFFIX}")):
        text = path.read_text().strip()
        if text.isdigit():
            found[path.name.removesuffix(SUFFIX)] = int(text)
    return found
