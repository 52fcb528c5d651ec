"""The caller policy: which identity may call which method (shop_grpc.policy)."""

from __future__ import annotations

import pytest

from shop_grpc import policy


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
