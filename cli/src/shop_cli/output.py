"""Readable text for people, canonical JSON for programs, and one shape for errors."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import TextIO, TypeVar

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from shop_grpc import errors
from shop_grpc.status import from_rpc_error

M = TypeVar("M", bound=Message)

Row = Sequence[object]


def table(headers: Sequence[str], rows: Iterable[Row]) -> str:
    """Columns padded to their widest cell; numbers right-aligned."""
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    numeric = [
        all(_is_number(row[i]) for row in cells[1:]) and len(cells) > 1 for i in range(len(headers))
    ]
    lines = []
    for row in cells:
        parts = [
            value.rjust(width) if is_num else value.ljust(width)
            for value, width, is_num in zip(row, widths, numeric, strict=True)
        ]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def fields(pairs: Iterable[tuple[str, object]]) -> str:
    """``name  value`` lines with the values lined up."""
    items = [(name, _cell(value)) for name, value in pairs]
    width = max((len(name) for name, _ in items), default=0)
    return "\n".join(f"{name.ljust(width)}  {value}".rstrip() for name, value in items)


def _cell(value: object) -> str:
    if value is None or value == "":
        return "-"
    return str(value)


def _is_number(text: str) -> bool:
    return text.lstrip("-").replace(".", "", 1).isdigit()


def timestamp(value: Timestamp) -> str:
    if not value.seconds and not value.nanos:
        return "-"
    return value.ToDatetime().replace(microsecond=0).isoformat() + "Z"


def enum_name(name: str, prefix: str) -> str:
    """``STATUS_CONFIRMED`` -> ``CONFIRMED``: the prefix only repeats the field name."""
    return name.removeprefix(prefix)


def message_json(message: Message, *, indent: int | None = 2) -> str:
    return json_format.MessageToJson(message, indent=indent)


# `out` defaults to None, not sys.stdout: a default is bound once, at import, and would
# miss a stdout replaced later (redirect_stdout, test capture).
def print_json(message: Message, out: TextIO | None = None) -> None:
    print(message_json(message), file=out or sys.stdout)


def print_json_list(messages: Iterable[Message], out: TextIO | None = None) -> None:
    print(
        json.dumps([json_format.MessageToDict(m) for m in messages], indent=2),
        file=out or sys.stdout,
    )


def print_list(messages: Sequence[M], as_json: bool, table: Callable[[Sequence[M]], str]) -> None:
    """A list as JSON, or as the readable table `table` renders."""
    if as_json:
        print_json_list(messages)
    else:
        print(table(messages))


def print_json_line(message: Message, out: TextIO | None = None) -> None:
    """One compact object per line, for streams (JSON Lines)."""
    print(message_json(message, indent=None), file=out or sys.stdout, flush=True)


def describe_rpc_error(exc: grpc.RpcError) -> list[str]:
    """``error: CODE: message`` plus one indented line per violation in the status details."""
    code = exc.code()
    lines = [f"error: {code.name}: {exc.details() or ''}".rstrip()]
    try:
        error = from_rpc_error(exc)
    except ValueError:
        # A status-details trailer that disagrees with the status code: show what we have.
        return lines
    if isinstance(error, errors.InvalidArgument):
        lines += [f"  {v.field}: {v.description}" for v in error.violations]
    elif isinstance(error, errors.FailedPrecondition):
        lines += [f"  {v.type} {v.subject}: {v.description}" for v in error.violations]
    if error.reason:
        lines.append(f"  reason: {error.reason}")
    if error.reason in SIGN_IN_AGAIN:
        lines.append(
            "  `shop login` signs the customer in again; `shop logout` acts as the operator"
        )
    return lines


SIGN_IN_AGAIN = frozenset({"TOKEN_EXPIRED", "TOKEN_INVALID"})
"""Reasons of an UNAUTHENTICATED answer to the stored customer's token."""
