"""Card numbers: normalisation, the Luhn check, brands and request checks.

A Card lives only as long as the request that carries it: its number and CVC
are kept out of ``repr`` so that no traceback or log line can show them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

MIN_DIGITS = 12
MAX_DIGITS = 19
# ASCII only: str.isdigit() and int() also accept other scripts' digits ('²', '٣').
_DIGITS = re.compile(r"[0-9]+")
_CVC = re.compile(r"[0-9]{3,4}")


@dataclass(frozen=True)
class Card:
    number: str = field(repr=False)
    """Digits only (see ``normalize_number``)."""
    exp_month: int
    exp_year: int
    cvc: str = field(repr=False)

    @property
    def last4(self) -> str:
        return self.number[-4:]

    @property
    def brand(self) -> str:
        return brand_of(self.number)


def normalize_number(raw: str) -> str:
    """People type card numbers in groups; the spaces carry no meaning."""
    return raw.replace(" ", "")


def is_digits(text: str) -> bool:
    """True if `text` is one or more ASCII digits 0-9."""
    return _DIGITS.fullmatch(text) is not None


def luhn_valid(digits: str) -> bool:
    if not is_digits(digits):
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def brand_of(digits: str) -> str:
    if digits.startswith("4"):
        return "visa"
    if digits[:2] in ("34", "37"):
        return "amex"
    if len(digits) >= 2 and 51 <= int(digits[:2]) <= 55:
        return "mastercard"
    if len(digits) >= 4 and 2221 <= int(digits[:4]) <= 2720:
        return "mastercard"
    return "unknown"


def card_problems(card: Card, today: date) -> list[tuple[str, str]]:
    """(field, description) for every unusable part of `card`; field names as in PaymentCard."""
    problems = _number_problems(card.number) + _expiry_problems(card, today)
    if _CVC.fullmatch(card.cvc) is None:
        problems.append(("cvc", "must be 3 or 4 digits"))
    return problems


def _number_problems(digits: str) -> list[tuple[str, str]]:
    # The descriptions never echo the number: they end up in status messages and logs.
    if not digits:
        return [("number", "is required")]
    if not (is_digits(digits) and MIN_DIGITS <= len(digits) <= MAX_DIGITS):
        return [("number", f"must be {MIN_DIGITS} to {MAX_DIGITS} digits")]
    if not luhn_valid(digits):
        return [("number", "fails the Luhn check")]
    return []


def _expiry_problems(card: Card, today: date) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    month_ok = 1 <= card.exp_month <= 12
    year_ok = 1000 <= card.exp_year <= 9999
    if not month_ok:
        problems.append(("exp_month", "must be between 1 and 12"))
    if not year_ok:
        problems.append(("exp_year", "must be a four-digit year"))
    elif card.exp_year < today.year:
        problems.append(("exp_year", "is in the past"))
    elif month_ok and card.exp_year == today.year and card.exp_month < today.month:
        problems.append(("exp_month", "is in the past"))
    return problems
