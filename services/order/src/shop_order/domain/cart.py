"""The cart of an interactive checkout session: priced lines, one currency."""

from __future__ import annotations

from dataclasses import dataclass, field

from shop_grpc.errors import FailedPrecondition, FieldViolation, InvalidArgument
from shop_grpc.money import Money

MAX_LINES = 100


@dataclass(frozen=True)
class PricedLine:
    """A cart line as priced when it was last set: title, unit price and units available then."""

    product_id: str
    title: str
    quantity: int
    unit_price: Money
    available: int

    @property
    def line_total(self) -> Money:
        return self.unit_price * self.quantity


class MixedCurrencies(FailedPrecondition):
    """FAILED_PRECONDITION: a line priced in another currency than the cart's."""

    def __init__(self, line: PricedLine, cart_currency: str) -> None:
        super().__init__(
            f"product {line.product_id!r} is priced in {line.unit_price.currency}; "
            f"the cart is in {cart_currency}",
            reason="MIXED_CURRENCIES",
        )


@dataclass
class Cart:
    lines: dict[str, PricedLine] = field(default_factory=dict)

    def check_room_for(self, product_id: str) -> None:
        """Raises InvalidArgument if a new line for `product_id` would not fit."""
        if product_id not in self.lines and len(self.lines) >= MAX_LINES:
            raise InvalidArgument(
                [FieldViolation("set_line.product_id", f"a cart holds at most {MAX_LINES} lines")]
            )

    def set(self, line: PricedLine) -> None:
        """Adds or replaces `line`, keeping the order lines were first added in.

        Raises MixedCurrencies if the other lines are priced in another currency.
        """
        self.check_room_for(line.product_id)
        others = [other for pid, other in self.lines.items() if pid != line.product_id]
        if others and others[0].unit_price.currency != line.unit_price.currency:
            raise MixedCurrencies(line, others[0].unit_price.currency)
        self.lines[line.product_id] = line

    def remove(self, product_id: str) -> None:
        self.lines.pop(product_id, None)

    @property
    def quantities(self) -> dict[str, int]:
        return {pid: line.quantity for pid, line in self.lines.items()}

    @property
    def is_empty(self) -> bool:
        return not self.lines

    @property
    def total(self) -> Money | None:
        if not self.lines:
            return None
        lines = list(self.lines.values())
        total = Money.zero(lines[0].unit_price.currency)
        for line in lines:
            total += line.line_total
        return total

    @property
    def all_available(self) -> bool:
        return all(line.available >= line.quantity for line in self.lines.values())
