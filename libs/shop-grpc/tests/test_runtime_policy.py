"""The caller policy: which identity may call which method (shop_grpc.policy)."""

from __future__ import annotations

import pytest

from shop_grpc import policy
from shop_grpc.registry import ANYONE, CUSTOMER


@pytest.mark.parametrize(
    "method",
    [
        "/shop.inventory.v1.InventoryService/ReserveItems",
        "/shop.inventory.v1.InventoryService/CommitReservation",
        "/shop.inventory.v1.InventoryService/ReleaseReservation",
        "/shop.payment.v1.PaymentService/Charge",
        "/shop.payment.v1.PaymentService/Refund",
    ],
)
def test_only_order_moves_stock_and_money(method):
    assert policy.allowed("order", method)
    for other in ("client", "user", "inventory", "payment"):
        assert not policy.allowed(other, method)


def test_the_operator_may_run_the_shop_but_unknown_methods_are_closed():
    for method in (
        "/shop.order.v1.OrderService/CreateOrder",
        "/shop.order.v1.OrderService/CancelOrder",
        "/shop.inventory.v1.InventoryService/ImportStock",
        "/shop.user.v1.UserService/DeleteUser",
        "/shop.payment.v1.PaymentService/ListPayments",
        "/grpc.health.v1.Health/Check",
    ):
        assert policy.allowed("client", method)
    assert policy.allowed("order", "/shop.user.v1.UserService/GetUser")
    assert not policy.allowed("order", "/shop.user.v1.UserService/DeleteUser")
    assert not policy.allowed("client", "/shop.user.v1.UserService/NotYetDecided")


TABLE = {
    "shop.x.v1.X": {
        "Open": (ANYONE,),
        "Mine": (CUSTOMER, "client"),
        "Staff": ("client", "order"),
    }
}


def test_a_method_is_open_to_whom_the_table_names_and_closed_when_it_names_no_one():
    assert policy.allowed("client", "/shop.x.v1.X/Staff", TABLE)
    assert policy.allowed("order", "shop.x.v1.X/Staff", TABLE)  # the leading slash is optional
    assert not policy.allowed("payment", "/shop.x.v1.X/Staff", TABLE)
    assert policy.allowed("payment", "/shop.x.v1.X/Open", TABLE)
    assert not policy.allowed("client", "/shop.x.v1.X/Missing", TABLE)
    assert not policy.allowed("client", "/shop.y.v1.Y/Open", TABLE)


def test_customer_names_a_tokens_holder_never_a_certificate():
    assert policy.accepts_customers("/shop.x.v1.X/Mine", TABLE)
    assert not policy.accepts_customers("/shop.x.v1.X/Staff", TABLE)
    assert not policy.accepts_customers("/shop.x.v1.X/Open", TABLE)
    # A certificate made out to "customer" gets nothing from the CUSTOMER entry.
    assert not policy.allowed(CUSTOMER, "/shop.x.v1.X/Mine", TABLE)
    assert policy.allowed(CUSTOMER, "/shop.x.v1.X/Open", TABLE)


@pytest.mark.parametrize("service", policy.OPEN_SERVICES)
def test_health_and_reflection_are_open_whatever_the_table_says(service):
    method = f"/{service}/Anything"
    assert policy.is_open(method)
    assert policy.allowed("stranger", method, {})
    assert not policy.is_open("/shop.x.v1.X/Open")
