"""Test-only fault injection, configured by SHOP_FAULTS and off unless set.

    SHOP_FAULTS="shop.payment.v1.PaymentService/Charge=delay:500ms"
    SHOP_FAULTS="shop.user.v1.UserService=fail:UNAVAILABLE,shop.inventory.v1.InventoryService/GetStock=delay:2s"

Each entry is ``<service>[/<method>]=<action>``: ``delay:<duration>`` (ms or s)
holds the call before its handler runs, as a slow handler would, and
``fail:<STATUS_CODE>`` answers it with that status instead. The server logs a
warning at start-up when any fault is configured, and one per injected fault
with the deadline the handler saw.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import grpc

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s)$")


@dataclass(frozen=True)
class Fault:
    target: str
    """A full service name (every method) or service/method, without the leading slash."""
    delay_seconds: float = 0.0
    fail_with: grpc.StatusCode | None = None

    def applies_to(self, method: str) -> bool:
        """`method` as grpc names it: /package.Service/Method."""
        name = method.lstrip("/")
        return name == self.target or name.split("/", 1)[0] == self.target


def parse(spec: str) -> tuple[Fault, ...]:
    """Faults from a SHOP_FAULTS value; ValueError says what is wrong."""
    return tuple(_entry(entry.strip()) for entry in spec.split(",") if entry.strip())


def _entry(entry: str) -> Fault:
    target, sep, action = entry.partition("=")
    kind, _, argument = action.partition(":")
    if not sep or not target.strip():
        raise ValueError(f"{entry!r}: expected <service>[/<method>]=<action>")
    target = target.strip().lstrip("/")
    if kind == "delay":
        return Fault(target, delay_seconds=_seconds(argument))
    if kind == "fail":
        code = getattr(grpc.StatusCode, argument.upper(), None)
        if not isinstance(code, grpc.StatusCode) or code is grpc.StatusCode.OK:
            raise ValueError(f"{entry!r}: {argument!r} is not an error status code")
        return Fault(target, fail_with=code)
    raise ValueError(f"{entry!r}: the action must be delay:<duration> or fail:<CODE>")


def _seconds(text: str) -> float:
    match = _DURATION.match(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a duration such as 500ms or 2s")
    value = float(match.group(1))
    return value / 1000 if match.group(2) == "ms" else value
