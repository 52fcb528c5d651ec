"""What the payment domain reports; each maps to a gRPC status through shop_grpc.errors."""

from __future__ import annotations

from shop_grpc.errors import FailedPrecondition, NotFound, PreconditionViolation
from shop_grpc.money import Money


class PaymentMethodNotFound(NotFound):
    def __init__(self, payment_method_id: str) -> None:
        super().__init__("payment method", payment_method_id)


class PaymentNotFound(NotFound):
    def __init__(self, payment_id: str) -> None:
        super().__init__("payment", payment_id)


class OrderChargedDifferently(FailedPrecondition):
    def __init__(self, order_id: str, charged: Money, requested: Money) -> None:
        description = f"order was already charged {charged}, not {requested}"
        super().__init__(
            f"order {order_id!r} {description}",
            [PreconditionViolation("ORDER_CHARGED", order_id, description)],
            reason="ORDER_CHARGED_DIFFERENT_AMOUNT",
        )


class NotRefundable(FailedPrecondition):
    def __init__(self, payment_id: str, status: str) -> None:
        description = f"payment is {status}; only a succeeded payment can be refunded"
        super().__init__(
            f"payment {payment_id!r} is {status}: nothing to refund",
            [PreconditionViolation("PAYMENT_STATUS", payment_id, description)],
            reason="PAYMENT_NOT_REFUNDABLE",
        )


class RefundExceedsBalance(FailedPrecondition):
    def __init__(self, payment_id: str, requested: Money, left: Money) -> None:
        description = f"refund of {requested} exceeds the {left} left"
        super().__init__(
            f"payment {payment_id!r}: {description}",
            [PreconditionViolation("REFUND_BALANCE", payment_id, description)],
            reason="REFUND_EXCEEDS_BALANCE",
        )


class RefundCurrencyMismatch(FailedPrecondition):
    def __init__(self, payment_id: str, payment_currency: str, requested: str) -> None:
        description = f"payment is in {payment_currency}, refund asked in {requested}"
        super().__init__(
            f"payment {payment_id!r}: {description}",
            [PreconditionViolation("REFUND_CURRENCY", payment_id, description)],
            reason="REFUND_CURRENCY_MISMATCH",
        )
