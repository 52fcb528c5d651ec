"""`shop up`: the whole suite in the foreground until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from shop_cli.arguments import command, positive_float, positive_int
from shop_cli.suite import Suite, SuiteError


class StopRequested(Exception):
    """Raised in the main thread by the SIGINT/SIGTERM handler."""


def register(subparsers: Any) -> None:
    parser = command(subparsers, "up", run, "run the four services here until Ctrl-C")
    parser.add_argument(
        "--data-dir", type=Path, default=Path(".shop"), help="databases and logs (default .shop)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--base-port",
        type=positive_int,
        default=50051,
        help="order's port; inventory, payment and user take the next three (default 50051)",
    )
    parser.add_argument(
        "--ready-timeout",
        type=positive_float,
        default=60.0,
        metavar="SECONDS",
        help="how long the services may take to become SERVING (default 60)",
    )


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise StopRequested(signal.Signals(signum).name)


@contextmanager
def _stop_signals() -> Iterator[None]:
    previous = {sig: signal.signal(sig, _raise_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def say(text: str) -> None:
    print(f"shop     | {text}", file=sys.stderr, flush=True)


def wait_for_exit(suite: Suite) -> dict[str, int]:
    while not (exited := suite.exited()):
        time.sleep(0.2)
    return exited


def run(args: argparse.Namespace) -> int:
    suite = Suite(args.data_dir, host=args.host, base_port=args.base_port, echo=sys.stdout)
    code = 0
    try:
        with _stop_signals():
            say(f"starting services; data and logs in {suite.data_dir}")
            suite.start()
            suite.wait_ready(args.ready_timeout)
            print("ready:", flush=True)
            for service, endpoint in suite.endpoints().items():
                print(f"  {service:<10} {endpoint}", flush=True)
            for service, exit_code in wait_for_exit(suite).items():
                say(
                    f"error: {service} exited unexpectedly with code {exit_code}; "
                    f"see {suite.log_path(service)}"
                )
            code = 1
    except StopRequested as stop:
        say(f"{stop}: stopping")
    except SuiteError as exc:
        say(f"error: {exc}")
        code = 1
    return max(code, _stop(suite))


def _stop(suite: Suite) -> int:
    # Ignore further Ctrl-C: stop() is already bounded (SIGKILL after its timeout), and
    # abandoning it would orphan the children, which run in their own process group.
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        codes = suite.stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    unclean = {name: code for name, code in codes.items() if code != 0}
    if unclean:
        listed = ", ".join(f"{name} {code}" for name, code in unclean.items())
        say(f"stopped; exit codes not 0: {listed}")
        return 1
    say("stopped")
    return 0
