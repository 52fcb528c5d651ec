"""The issue's examples of bad requests, against the running suite: each gets a precise status."""

from __future__ import annotations

import base64
import json

import grpc

from shop.inventory.v1 import inventory_pb2
from shop.order.v1 import order_pb2
from shop.payment.v1 import payment_pb2
from shop.user.v1 import user_pb2
from shop_grpc.testing import rpc_fails


def forged(scope: str, key: object) -> str:
    """A token a client built itself: readable JSON, the right scope, a key of its choosing."""
    return base64.urlsafe_b64encode(json.dumps({"s": scope, "k": key}).encode()).decode()


async def bad_fields(call) -> list[str]:
    with rpc_fails(grpc.StatusCode.INVALID_ARGUMENT) as failed:
        await call
    return failed.fields


async def test_page_tokens_the_server_did_not_issue_are_invalid_argument(shop):
    user = await shop.user()
    for key in (["x", "y"], [1, 2, 3], None, "x", ["2026-01-01T00:00:00+00:00", 5]):
        for call in (
            shop.orders.ListOrders(
                order_pb2.ListOrdersRequest(user_id=user, page_token=forged(f"orders/{user}", key)),
                timeout=10,
            ),
            shop.users.ListUsers(
                user_pb2.ListUsersRequest(page_token=forged("users", key)), timeout=10
            ),
            shop.payments.ListPayments(
                payment_pb2.ListPaymentsRequest(page_token=forged("payments:", key)), timeout=10
            ),
            shop.inventory.ListProducts(
                inventory_pb2.ListProductsRequest(page_token=forged("products", key)), timeout=10
            ),
        ):
            assert await bad_fields(call) == ["page_token"]


async def test_a_token_from_one_users_orders_is_refused_for_another(shop):
    alice, bob = await shop.user(), await shop.user()
    widget = await shop.product(stock=5)
    for _ in range(2):
        await shop.place(alice, {widget: 1})
    page = await shop.orders.ListOrders(
        order_pb2.ListOrdersRequest(user_id=alice, page_size=1), timeout=10
    )
    assert page.next_page_token
    other = order_pb2.ListOrdersRequest(user_id=bob, page_token=page.next_page_token)
    assert await bad_fields(shop.orders.ListOrders(other, timeout=10)) == ["page_token"]


async def test_strings_that_would_reach_sql_are_refused_before_it(shop):
    nul = "a\x00b"
    assert await bad_fields(
        shop.orders.GetOrder(order_pb2.GetOrderRequest(order_id=nul), timeout=10)
    ) == ["order_id"]
    create = user_pb2.CreateUserRequest(
        user=user_pb2.User(username="nul.test", email="nul@example.com", display_name=nul),
        password="correct horse battery",
    )
    assert await bad_fields(shop.users.CreateUser(create, timeout=10)) == ["user.display_name"]
