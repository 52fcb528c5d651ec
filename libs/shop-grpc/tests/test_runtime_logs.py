"""Log lines as people and machines read them."""

from __future__ import annotations

import io
import os
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
