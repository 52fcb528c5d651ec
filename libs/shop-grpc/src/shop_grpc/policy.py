"""Who may call what: the one table every server checks callers against.

Callers are named by the identity in their certificate
(``spiffe://shop/ns/<namespace>/sa/<identity>``): a service, or ``client`` for
the `shop` CLI an operator runs. A method missing from the table is refused to
everyone, so a new method stays closed until someone decides who may call it.
"""

from __future__ import annotations

from collections.abc import Mapping

ORDER = "order"
CLIENT = "client"
ANYONE = "*"
"""Any caller holding a certificate from the suite's CA."""

OPERATOR = (CLIENT,)
OPERATOR_AND_ORDER = (CLIENT, ORDER)
ORDER_ONLY = (ORDER,)

POLICY: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    "shop.order.v1.OrderService": {
        "CreateOrder": OPERATOR,
        "GetOrder": OPERATOR,
        "ListOrders": OPERATOR,
        "CancelOrder": OPERATOR,
        "WatchOrder": OPERATOR,
        "Checkout": OPERATOR,
    },
    "shop.inventory.v1.InventoryService": {
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
    "shop.payment.v1.PaymentService": {
        # Money moves, and card numbers arrive, only through an order's saga.
        "CreatePaymentMethod": ORDER_ONLY,
        "Charge": ORDER_ONLY,
        "Refund": ORDER_ONLY,
        "GetPayment": OPERATOR_AND_ORDER,
        "ListPayments": OPERATOR_AND_ORDER,
    },
    "shop.user.v1.UserService": {
        "CreateUser": OPERATOR,
        "GetUser": OPERATOR_AND_ORDER,
        "UpdateUser": OPERATOR,
        "DeleteUser": OPERATOR,
        "ListUsers": OPERATOR,
        "WatchUsers": OPERATOR,
        "BatchCreateUsers": OPERATOR,
    },
}

OPEN_SERVICES = (
    "grpc.health.v1.Health",
    "grpc.reflection.v1alpha.ServerReflection",
    "grpc.reflection.v1.ServerReflection",
)
"""Health and reflection: open to any authenticated caller (probes, grpcurl)."""


def allowed(
    identity: str,
    method: str,
    policy: Mapping[str, Mapping[str, tuple[str, ...]]] = POLICY,
) -> bool:
    """Whether `identity` may call `method`, a full path like ``/pkg.Service/Method``."""
    if is_open(method):
        return True
    service, _, name = method.lstrip("/").partition("/")
    callers = policy.get(service, {}).get(name, ())
    return ANYONE in callers or identity in callers


def is_open(method: str) -> bool:
    """Whether `method` is open to any caller the TLS handshake let in."""
    return method.lstrip("/").partition("/")[0] in OPEN_SERVICES
