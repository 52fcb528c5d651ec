"""Log lines as people and machines read them."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import TextIO

import pytest
import structlog

from shop_grpc import logs
from shop_grpc.config import LogSettings

ESCAPE = "\x1b["


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()


def console_line(stdout: TextIO, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdout", stdout)
    logs.configure(LogSettings(format="console"), service="inventory")
    structlog.get_logger("test").warning("stock low", product_id="espresso")


def test_console_lines_written_to_a_pipe_or_file_carry_no_colour_codes(monkeypatch):
    written = io.StringIO()  # what `kubectl logs` shows: the container's stdout, not a terminal
    console_line(written, monkeypatch)
    line = written.getvalue()
    assert "stock low" in line and "product_id=espresso" in line and "service=inventory" in line
    assert ESCAPE not in line


def test_console_lines_on_a_terminal_are_coloured(monkeypatch):
    leader, follower = os.openpty()
    with open(follower, "w", closefd=True) as terminal, open(leader, "rb", closefd=True) as screen:
        console_line(terminal, monkeypatch)
        terminal.flush()
        shown = os.read(screen.fileno(), 4096).decode()
    assert "stock low" in shown
    assert ESCAPE in shown


# A process that logs JSON lines unbuffered (as in the images and under `shop up`) while a
# neighbour writes to the same pipe a byte at a time, as gRPC core's notices on stderr do.
SHARED_PIPE = """
import os, subprocess, sys
import structlog
from shop_grpc import logs
from shop_grpc.config import LogSettings

neighbour = subprocess.Popen(
    [sys.executable, "-c", "import os\\nwhile True: os.write(1, b'~')"], stdout=sys.stdout
)
logs.configure(LogSettings(format="json"), service="inventory")
log = structlog.get_logger("test")
for n in range(3000):
    log.info("rpc", n=n, rpc="/shop.inventory.v1.InventoryService/ListProducts")
neighbour.kill()
"""


def test_each_json_line_stays_whole_when_another_writer_shares_the_stream():
    written = subprocess.run(
        [sys.executable, "-c", SHARED_PIPE],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        check=True,
        timeout=60,
    ).stdout.decode()
    ours = [line.lstrip("~") for line in written.splitlines() if "{" in line]
    assert [json.loads(line)["n"] for line in ours] == list(range(3000))
