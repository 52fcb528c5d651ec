"""The payment service, as the suite knows it (shop_grpc.registry)."""

from shop.payment.v1 import payment_pb2
from shop_grpc.registry import CLIENT, ServiceSpec

OPERATOR_AND_ORDER = (CLIENT, "order")
ORDER_ONLY = ("order",)

SPEC = ServiceSpec(
    name="payment",
    default_port=50053,
    descriptor=payment_pb2.DESCRIPTOR.services_by_name["PaymentService"],
    callers={
        # Money moves, and card numbers arrive, only through an order's saga.
        "CreatePaymentMethod": ORDER_ONLY,
        "Charge": ORDER_ONLY,
        "Refund": ORDER_ONLY,
        "GetPayment": OPERATOR_AND_ORDER,
        "ListPayments": OPERATOR_AND_ORDER,
    },
)
