"""The card processor: turns a card into a token once, then charges the token.

``DeterministicProcessor`` stands in for a real processor without a network:
the outcome of every charge is decided by the card number, and that outcome
*is* its token, so the number itself never has to be kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from shop_grpc.money import Money
from shop_payment.domain.cards import Card
from shop_payment.domain.model import PaymentStatus

Kind = Literal["approve", "decline", "fail"]


@dataclass(frozen=True)
class Outcome:
    kind: Kind
    code: str = ""
    """Why a charge is declined or fails, e.g. card_declined."""

    @property
    def token(self) -> str:
        return f"{self.kind}:{self.code}" if self.code else self.kind

    @classmethod
    def from_token(cls, token: str) -> Outcome:
        kind, _, code = token.partition(":")
        if kind == "approve":
            return cls("approve")
        if kind in ("decline", "fail") and code:
            return cls(kind, code)  # type: ignore[arg-type]
        raise ValueError(f"not a processor token: {token!r}")


APPROVE = Outcome("approve")

TEST_CARDS: dict[str, Outcome] = {
    "4242424242424242": APPROVE,
    "4000000000000002": Outcome("decline", "card_declined"),
    "4000000000009995": Outcome("decline", "insufficient_funds"),
    "4000000000000119": Outcome("fail", "processing_error"),
}

_STATUS: dict[Kind, PaymentStatus] = {
    "approve": PaymentStatus.SUCCEEDED,
    "decline": PaymentStatus.DECLINED,
    "fail": PaymentStatus.FAILED,
}


@dataclass(frozen=True)
class ChargeResult:
    status: PaymentStatus
    failure_code: str = ""


class Processor(Protocol):
    def tokenize(self, card: Card) -> str:
        """An opaque token standing for `card` (already validated)."""
        ...

    def charge(self, token: str, amount: Money) -> ChargeResult: ...


class DeterministicProcessor:
    """Decides by card number; any Luhn-valid number outside TEST_CARDS is approved."""

    def tokenize(self, card: Card) -> str:
        return TEST_CARDS.get(card.number, APPROVE).token

    def charge(self, token: str, amount: Money) -> ChargeResult:
        outcome = Outcome.from_token(token)
        return ChargeResult(_STATUS[outcome.kind], outcome.code)
