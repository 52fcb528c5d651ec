"""The order service, as the suite knows it (shop_grpc.registry)."""

from shop.order.v1 import order_pb2
from shop_grpc.registry import CLIENT, CUSTOMER, ServiceSpec

# A customer with an access token acts on their own orders; the CLI's certificate, without a
# token, is the operator, who acts on anyone's (shop_grpc.interceptors.identity).
CUSTOMER_OR_OPERATOR = (CUSTOMER, CLIENT)

SPEC = ServiceSpec(
    name="order",
    default_port=50051,
    descriptor=order_pb2.DESCRIPTOR.services_by_name["OrderService"],
    depends_on=("user", "inventory", "payment"),
    callers={
        "CreateOrder": CUSTOMER_OR_OPERATOR,
        "GetOrder": CUSTOMER_OR_OPERATOR,
        "ListOrders": CUSTOMER_OR_OPERATOR,
        "CancelOrder": CUSTOMER_OR_OPERATOR,
        "WatchOrder": CUSTOMER_OR_OPERATOR,
        "Checkout": CUSTOMER_OR_OPERATOR,
    },
)
