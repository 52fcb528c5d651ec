"""Errors the order service reports to its callers."""

from __future__ import annotations

from shop_grpc.errors import FailedPrecondition, NotFound, PermissionDenied


class OrderNotFound(NotFound):
    def __init__(self, order_id: str) -> None:
        super().__init__("order", order_id)


class OtherCustomer(PermissionDenied):
    """A customer named another user as the one ordering or whose orders to list. (Another
    customer's order, by its id, is OrderNotFound instead, so order ids cannot be probed.)"""

    def __init__(self) -> None:
        super().__init__(
            "a customer places and lists only their own orders: user_id must be the signed-in "
            "user's",
            reason="OTHER_CUSTOMER",
        )


class OrderAlreadyFailed(FailedPrecondition):
    def __init__(self, order_id: str) -> None:
        super().__init__(
            f"order {order_id} has failed; there is nothing to cancel", reason="ORDER_FAILED"
        )


class LeaseLost(Exception):
    """Another replica now drives this order; this one must stop touching it."""
