"""The order service, as the suite knows it (shop_grpc.registry)."""

from shop.order.v1 import order_pb2
from shop_grpc.registry import CLIENT, ServiceSpec

OPERATOR = (CLIENT,)

SPEC = ServiceSpec(
    name="order",
    default_port=50051,
    descriptor=order_pb2.DESCRIPTOR.services_by_name["OrderService"],
    depends_on=("user", "inventory", "payment"),
    callers={
        "CreateOrder": OPERATOR,
        "GetOrder": OPERATOR,
        "ListOrders": OPERATOR,
        "CancelOrder": OPERATOR,
        "WatchOrder": OPERATOR,
        "Checkout": OPERATOR,
    },
)
