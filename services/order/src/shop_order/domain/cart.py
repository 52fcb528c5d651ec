"""The cart of an interactive checkout session."""

from __future__ import annotations

from dataclasses import dataclass, field

from shop_grpc.errors import FieldViolation, InvalidArgument
from shop_grpc.money import Money

MAX_LINES = 100


@dataclass
class Cart:
    quantities: dict[str, int] = field(default_factory=dict)

    def set(self, product_id: str, quantity: int) -> None:
        """Sets a line's quantity; 0 removes it. Insertion order is kept."""
        if quantity == 0:
            self.quantities.pop(product_id, None)
            return
        if product_id not in self.quantities and len(self.quantities) >= MAX_LINES:
            raise InvalidArgument(
                [FieldViolation("set_line.product_id", f"a cart holds at most {MAX_LINES} lines")]
            )
        self.quantities[product_id] = quantity

    @property
    def is_empty(self) -> bool:
        return not self.quantities


@dataclass(frozen=True)
class PricedLine:
    product_id: str
    title: str
    quantity: int
    unit_price: Money
    available: int

    @property
    def line_total(self) -> Money:
        return self.unit_price * self.quantity


def cart_total(lines: list[PricedLine]) -> Money | None:
    if not lines:
        return None
    total = Money.zero(lines[0].unit_price.currency)
    for line in lines:
        total += line.line_total
    return total
