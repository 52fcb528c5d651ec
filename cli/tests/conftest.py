"""Child processes for the tests of what /proc says about a process."""

import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator

import pytest

# Waits for a line on stdin, then (with "burn") holds 64 MiB and spins for a while, or (with
# "sleep") does nothing; says "done" and waits to be killed.
CHILD = textwrap.dedent(
    """
    import sys, time
    sys.stdin.readline()
    if sys.argv[1] == "burn":
        held = bytearray(64 * 1024 * 1024)
        for page in range(0, len(held), 4096):
            held[page] = 1
        until = time.process_time() + 0.3
        while time.process_time() < until:
            pass
    print("done", flush=True)
    time.sleep(60)
    """
)


class Child:
    """A child running CHILD in one mode, "burn" or "sleep"."""

    def __init__(self, mode: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", CHILD, mode],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.pid = self.process.pid

    def run_to_done(self) -> None:
        """Lets it do its work and returns once it has."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()
        assert self.process.stdout.readline() == "done\n"

    def end(self) -> None:
        self.process.kill()
        self.process.wait()


@pytest.fixture
def children() -> Iterator[Callable[[str], Child]]:
    """Starts children (each waiting for run_to_done()); kills them after the test."""
    started: list[Child] = []

    def start(mode: str) -> Child:
        child = Child(mode)
        started.append(child)
        return child

    yield start
    for child in started:
        child.end()
