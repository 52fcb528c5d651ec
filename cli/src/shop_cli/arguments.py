"""argparse building blocks: the parser class, shared flags and value parsers."""

from __future__ import annotations

import argparse
import asyncio
import signal
import threading
import uuid
from collections.abc import Callable, Coroutine
from datetime import date
from typing import Any

Handler = Callable[[argparse.Namespace], int]

DEFAULT_TIMEOUT = 10.0


class CliError(Exception):
    """A problem the user can fix; printed as ``error: <message>``, exit status 1."""


def command(
    subparsers: Any, name: str, handler: Handler, help_text: str, **kwargs: Any
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name, help=help_text, description=help_text, **kwargs
    )
    parser.set_defaults(handler=handler, parser=parser)
    return parser


TERMINATED = 128 + signal.SIGTERM
"""The exit status of a command stopped by SIGTERM, as a shell reports one it killed."""


def run_async(function: Callable[[argparse.Namespace], Coroutine[Any, Any, int]]) -> Handler:
    """A handler that runs an async command in a fresh event loop.

    SIGTERM (a `timeout`, a supervisor, `kill`) cancels the command as Ctrl-C does, so its
    cleanup runs — `shop bench rpc` stops the servers it started, rather than leaving them
    running with no parent — and the exit status is 143.
    """

    async def until_terminated(args: argparse.Namespace) -> int:
        if threading.current_thread() is not threading.main_thread():
            # Signals reach the main thread only (a command run from another, as tests do).
            return await function(args)
        loop = asyncio.get_running_loop()
        command = asyncio.current_task()
        assert command is not None
        loop.add_signal_handler(signal.SIGTERM, command.cancel)
        try:
            return await function(args)
        finally:
            loop.remove_signal_handler(signal.SIGTERM)

    def handler(args: argparse.Namespace) -> int:
        try:
            return asyncio.run(until_terminated(args))
        except asyncio.CancelledError:
            return TERMINATED

    handler.__name__ = function.__name__
    return handler


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the proto messages as JSON (streams: one per line)",
    )


def add_timeout_flag(
    parser: argparse.ArgumentParser, default: float = DEFAULT_TIMEOUT, what: str = "each call"
) -> None:
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=default,
        metavar="SECONDS",
        help=f"deadline of {what} (default {default:g})",
    )


def add_request_id_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--request-id",
        metavar="ID",
        help="idempotency key; repeat one to retry a call safely (default: a new uuid4)",
    )


def request_id(args: argparse.Namespace) -> str:
    return str(getattr(args, "request_id", None) or uuid.uuid4())


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return value


def quantity_pair(text: str) -> tuple[str, int]:
    """``PRODUCT=QTY`` -> (product, quantity) with a positive quantity."""
    product_id, sep, quantity = text.partition("=")
    if not sep or not product_id.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: expected PRODUCT=QUANTITY")
    try:
        return product_id.strip(), positive_int(quantity.strip())
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: quantity {exc}") from None


def expiry(text: str) -> tuple[int, int]:
    """``MM/YYYY`` or ``MM/YY`` -> (month, four-digit year)."""
    month_text, sep, year_text = text.partition("/")
    try:
        month, year = int(month_text), int(year_text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected MM/YYYY") from None
    if not sep or not 1 <= month <= 12:
        raise argparse.ArgumentTypeError(f"{text!r}: expected MM/YYYY with a month 1-12")
    if len(year_text) == 2:
        year += 2000
    return month, year


def default_expiry() -> str:
    """A date safely in the future for the test cards."""
    return f"12/{date.today().year + 3}"
