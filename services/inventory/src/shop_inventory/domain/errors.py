"""The inventory's errors, each a branch of the shared tree (``shop_grpc.errors``)."""

from __future__ import annotations

from shop_grpc.errors import (
    AlreadyExists,
    FailedPrecondition,
    NotFound,
    PreconditionViolation,
)


class ProductNotFound(NotFound):
    def __init__(self, product_id: str) -> None:
        super().__init__("product", product_id)


class ImportedProductNotFound(ProductNotFound):
    """An import line names a product the catalogue does not have."""

    def __init__(self, product_id: str, index: int) -> None:
        super().__init__(product_id)
        self.message = f"requests[{index}]: product {product_id!r} not found"
        self.args = (self.message,)


class ProductAlreadyExists(AlreadyExists):
    def __init__(self, product_id: str) -> None:
        super().__init__("product", product_id)


class ReservationNotFound(NotFound):
    def __init__(self, order_id: str) -> None:
        super().__init__("reservation", order_id)


class OutOfStock(FailedPrecondition):
    """One violation per line the shelf cannot cover."""

    def __init__(self, violations: list[PreconditionViolation]) -> None:
        subjects = ", ".join(v.subject for v in violations)
        super().__init__(f"not enough stock for {subjects}", violations, reason="OUT_OF_STOCK")


class MixedCurrencies(FailedPrecondition):
    def __init__(self, currencies: list[str]) -> None:
        super().__init__(
            f"products of one reservation must share a currency, got {', '.join(currencies)}",
            reason="MIXED_CURRENCIES",
        )


class ReservationMismatch(FailedPrecondition):
    """The order already holds a reservation for different lines."""

    def __init__(self, order_id: str) -> None:
        super().__init__(
            f"order {order_id!r} already has a reservation with other lines",
            reason="RESERVATION_MISMATCH",
        )


class ReservationClosed(FailedPrecondition):
    """A reserve for an order whose reservation was already released or expired.

    Holding stock again would create a reservation nothing releases: the order that
    asked has been undone (or its hold ran out and it failed) while this call was on
    its way."""

    def __init__(self, order_id: str, state: str) -> None:
        super().__init__(
            f"the reservation of order {order_id!r} is {state}; it cannot be held again",
            reason="RESERVATION_CLOSED",
        )


class ReservationReleased(FailedPrecondition):
    def __init__(self, order_id: str) -> None:
        super().__init__(f"reservation {order_id!r} was released", reason="RESERVATION_RELEASED")


class ReservationExpired(FailedPrecondition):
    def __init__(self, order_id: str) -> None:
        super().__init__(f"reservation {order_id!r} expired", reason="RESERVATION_EXPIRED")
