"""Errors the order service reports to its callers."""

from __future__ import annotations

from shop_grpc.errors import FailedPrecondition, NotFound


class OrderNotFound(NotFound):
    def __init__(self, order_id: str) -> None:
        super().__init__("order", order_id)


class OrderAlreadyFailed(FailedPrecondition):
    def __init__(self, order_id: str) -> None:
        super().__init__(
            f"order {order_id} has failed; there is nothing to cancel", reason="ORDER_FAILED"
        )


class LeaseLost(Exception):
    """Another replica now drives this order; this one must stop touching it."""
