"""Decimal text <-> integer minor units, exactly: a price never passes through a float."""

from __future__ import annotations

import argparse
from decimal import Decimal, InvalidOperation

from shop.common.v1 import money_pb2
from shop_grpc.money import Money

MINOR_DIGITS = 2


def parse_minor_units(text: str) -> int:
    """``"19.99"`` -> 1999; raises ValueError for anything that is not an exact amount."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a number") from None
    if not value.is_finite():
        raise ValueError(f"{text!r} is not a finite amount")
    exponent = value.as_tuple().exponent
    if (
        isinstance(exponent, int)
        and exponent < -MINOR_DIGITS
        and value != value.quantize(Decimal(1).scaleb(-MINOR_DIGITS))
    ):
        raise ValueError(f"{text!r} has more than {MINOR_DIGITS} decimal places")
    return int(value.scaleb(MINOR_DIGITS))


def amount_argument(text: str) -> int:
    """argparse ``type=`` wrapper so a bad price is a usage error, not a traceback."""
    try:
        return parse_minor_units(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def to_proto(amount_minor: int, currency: str) -> money_pb2.Money:
    return money_pb2.Money(currency_code=currency.upper(), amount_minor=amount_minor)


def format_money(value: money_pb2.Money | None) -> str:
    if value is None or (not value.currency_code and not value.amount_minor):
        return "-"
    return str(Money(value.currency_code, value.amount_minor))
