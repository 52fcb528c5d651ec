"""The inventory service, as the suite knows it (shop_grpc.registry)."""

from shop.inventory.v1 import inventory_pb2
from shop_grpc.registry import CLIENT, ServiceSpec

OPERATOR = (CLIENT,)
OPERATOR_AND_ORDER = (CLIENT, "order")
ORDER_ONLY = ("order",)

SPEC = ServiceSpec(
    name="inventory",
    default_port=50052,
    descriptor=inventory_pb2.DESCRIPTOR.services_by_name["InventoryService"],
    callers={
        "CreateProduct": OPERATOR,
        "GetProduct": OPERATOR_AND_ORDER,
        "ListProducts": OPERATOR_AND_ORDER,
        "GetStock": OPERATOR_AND_ORDER,
        "ImportStock": OPERATOR,
        "WatchStock": OPERATOR_AND_ORDER,
        # Stock moves only through an order's saga.
        "ReserveItems": ORDER_ONLY,
        "CommitReservation": ORDER_ONLY,
        "ReleaseReservation": ORDER_ONLY,
        "GetReservation": OPERATOR_AND_ORDER,
    },
)
