"""Money in integer minor units with its currency; never a float."""

from __future__ import annotations

from dataclasses import dataclass

from shop_grpc.errors import FailedPrecondition


class CurrencyMismatch(FailedPrecondition):
    """FAILED_PRECONDITION (reason MIXED_CURRENCIES): amounts in two currencies were combined.

    A request that mixes currencies gets this status wherever the mix is found, never INTERNAL.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="MIXED_CURRENCIES")


@dataclass(frozen=True, order=True)
class Money:
    currency: str
    amount_minor: int

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(currency, 0)

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.currency, self.amount_minor + other.amount_minor)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.currency, self.amount_minor - other.amount_minor)

    def __mul__(self, quantity: int) -> Money:
        return Money(self.currency, self.amount_minor * quantity)

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise CurrencyMismatch(f"cannot combine {self.currency} and {other.currency}")

    def __str__(self) -> str:
        sign = "-" if self.amount_minor < 0 else ""
        units, cents = divmod(abs(self.amount_minor), 100)
        return f"{sign}{units}.{cents:02d} {self.currency}"
