"""`shop demo`: seed a little catalogue and a customer, sign in as that customer, place one
order as them, show how it ended."""

from __future__ import annotations

import argparse
import secrets
import sys
import uuid
from dataclasses import dataclass, field
from typing import Any

import grpc

from shop.inventory.v1 import inventory_pb2
from shop.order.v1 import order_pb2
from shop.user.v1 import user_pb2
from shop_cli import output, views
from shop_cli.arguments import (
    CliError,
    add_json_flag,
    add_timeout_flag,
    command,
    default_expiry,
    expiry,
    run_async,
)
from shop_cli.commands.login import sign_in
from shop_cli.commands.orders import TEST_CARD, card, create_request, follow
from shop_cli.money import to_proto
from shop_cli.targets import CLIENT_SERVICES, Clients, add_target_flags

PRODUCTS = (
    ("demo-widget", "Demo widget", 1250),
    ("demo-gadget", "Demo gadget", 2400),
)
ORDER = [("demo-widget", 1), ("demo-gadget", 2)]
MIN_STOCK = 100
TOP_UP_TO = 1000
DEMO_USER = "demo"
DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "demo-password"
# Fixed, so CreateUser's idempotency hands back the same user on every run.
DEMO_USER_REQUEST_ID = "shop-demo-user"


def register(subparsers: Any) -> None:
    parser = command(
        subparsers,
        "demo",
        run_async(run),
        "seed demo products, stock and a user, then place and follow one order",
    )
    parser.add_argument(
        "--fresh-customer",
        action="store_true",
        help="sign up a new customer with a random password nobody is shown, instead of the "
        f"shared {DEMO_USER!r} (whose password is in the README): for a suite others use",
    )
    add_target_flags(parser, *CLIENT_SERVICES)
    add_json_flag(parser)
    add_timeout_flag(parser)


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def ensure_products(clients: Clients, call_timeout: float) -> None:
    for product_id, title, price in PRODUCTS:
        request = inventory_pb2.CreateProductRequest(
            product=inventory_pb2.Product(
                product_id=product_id, title=title, price=to_proto(price, "USD")
            ),
            request_id=str(uuid.uuid4()),
        )
        try:
            await clients.inventory.CreateProduct(request, timeout=call_timeout)
            say(f"created product {product_id}")
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.ALREADY_EXISTS:
                raise
            say(f"product {product_id} already exists")


async def ensure_stock(clients: Clients, call_timeout: float) -> None:
    lines: list[tuple[str, int]] = []
    for product_id, _, _ in PRODUCTS:
        level = await clients.inventory.GetStock(
            inventory_pb2.GetStockRequest(product_id=product_id), timeout=call_timeout
        )
        if level.available < MIN_STOCK:
            lines.append((product_id, TOP_UP_TO - level.available))
    if not lines:
        say(f"stock is at least {MIN_STOCK} for every demo product")
        return
    key = str(uuid.uuid4())
    requests = [
        inventory_pb2.ImportStockRequest(request_id=key, product_id=p, quantity=q) for p, q in lines
    ]
    response = await clients.inventory.ImportStock(iter(requests), timeout=call_timeout)
    for level in response.levels:
        say(f"stock of {level.product_id} topped up to {level.available}")


@dataclass(frozen=True)
class Customer:
    username: str
    email: str
    password: str = field(repr=False)
    request_id: str


SHARED = Customer(DEMO_USER, DEMO_EMAIL, DEMO_PASSWORD, DEMO_USER_REQUEST_ID)


def fresh_customer() -> Customer:
    """A customer of this run alone, whose password is never shown or stored: nobody can
    sign in as it afterwards."""
    suffix = secrets.token_hex(4)
    return Customer(
        f"{DEMO_USER}-{suffix}",
        f"{DEMO_USER}-{suffix}@example.com",
        secrets.token_urlsafe(24),
        str(uuid.uuid4()),
    )


async def ensure_user(clients: Clients, call_timeout: float, customer: Customer) -> user_pb2.User:
    request = user_pb2.CreateUserRequest(
        user=user_pb2.User(
            username=customer.username, email=customer.email, display_name="Demo Customer"
        ),
        password=customer.password,
        request_id=customer.request_id,
    )
    try:
        user: user_pb2.User = await clients.users.CreateUser(request, timeout=call_timeout)
    except grpc.aio.AioRpcError as exc:
        if exc.code() != grpc.StatusCode.ALREADY_EXISTS:
            raise
        raise CliError(
            f"user {customer.username!r} or {customer.email} exists but was not created by an "
            f"earlier `shop demo` (CreateUser with request_id {customer.request_id!r} would have "
            "returned it): delete that user with `shop users delete ID`, or start the suite "
            "with a fresh data directory"
        ) from exc
    say(f"user {user.username} is {user.user_id}")
    return user


async def run(args: argparse.Namespace) -> int:
    async with Clients(args) as clients:
        await ensure_products(clients, args.timeout)
        await ensure_stock(clients, args.timeout)
        signing_up = fresh_customer() if args.fresh_customer else SHARED
        user = await ensure_user(clients, args.timeout, signing_up)
        session = await sign_in(clients, signing_up.username, signing_up.password, args.timeout)
        say(f"signed in as {signing_up.username}")
    # The order is placed by the customer, with their token, not by the operator.
    async with Clients(args, token=session.access_token) as customer:
        request = create_request(
            user.user_id, ORDER, card(TEST_CARD, expiry(default_expiry()), "123"), str(uuid.uuid4())
        )
        order = await customer.orders.CreateOrder(request, timeout=args.timeout)
        say(f"placed order {order.order_id}; following it")
        order = await follow(customer, order, args.timeout)
    print(output.message_json(order) if args.json else views.order(order))
    return 0 if order.status == order_pb2.Order.STATUS_CONFIRMED else 1
