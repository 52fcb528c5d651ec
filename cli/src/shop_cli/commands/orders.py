"""`shop orders ...`: place (at once or through a checkout), follow, cancel and list orders."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from shop.common.v1 import money_pb2
from shop.order.v1 import order_pb2
from shop.payment.v1 import payment_pb2
from shop_cli import output, views
from shop_cli.arguments import (
    CliError,
    add_json_flag,
    add_request_id_flag,
    add_timeout_flag,
    command,
    default_expiry,
    expiry,
    positive_int,
    quantity_pair,
    request_id,
    run_async,
)
from shop_cli.checkout import CheckoutSession
from shop_cli.paging import PAGE_SIZE, collect
from shop_cli.session import signed_in
from shop_cli.targets import Clients, add_target_flags
from shop_cli.tls import client_tls
from shop_grpc.config import PLAINTEXT

FINAL = frozenset(
    {
        order_pb2.Order.STATUS_CONFIRMED,
        order_pb2.Order.STATUS_FAILED,
        order_pb2.Order.STATUS_CANCELLED,
    }
)
TEST_CARD = "4242424242424242"
WATCH_TIMEOUT = 60.0


def register(subparsers: Any) -> None:
    group = subparsers.add_parser(
        "orders", help="place (at once or through a checkout), get, cancel, list and watch orders"
    )
    sub = group.add_subparsers(dest="action", required=True, metavar="ACTION")

    place_p = command(sub, "place", run_async(place), "place an order and follow it")
    place_p.add_argument(
        "--wait",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="follow the order until it is final (default) or print it as first answered",
    )
    checkout_p = command(
        sub,
        "checkout",
        run_async(checkout),
        "price a cart line by line, then place it and follow the order (the Checkout stream)",
    )
    for parser in (place_p, checkout_p):
        _add_order_flags(parser)

    get_p = command(sub, "get", run_async(get), "show one order")
    get_p.add_argument("order_id", metavar="ID")

    cancel_p = command(sub, "cancel", run_async(cancel), "cancel an order (refunds if paid)")
    cancel_p.add_argument("order_id", metavar="ID")
    add_request_id_flag(cancel_p)

    list_p = command(sub, "list", run_async(list_orders), "list a user's orders, newest first")
    list_p.add_argument(
        "--user",
        dest="user_id",
        metavar="ID",
        help="the customer (default: the one `shop login` signed in)",
    )
    list_p.add_argument("--limit", type=positive_int, help="show at most this many")

    watch_p = command(sub, "watch", run_async(watch), "print an order's changes until it is final")
    watch_p.add_argument("order_id", metavar="ID")

    for parser in (place_p, checkout_p, get_p, cancel_p, list_p, watch_p):
        add_target_flags(parser, "order")
        add_json_flag(parser)
    for parser in (get_p, cancel_p, list_p):
        add_timeout_flag(parser)
    add_timeout_flag(place_p, what="placing, and again of following")
    add_timeout_flag(checkout_p, what="the whole checkout")
    add_timeout_flag(watch_p, WATCH_TIMEOUT, "the watch")


def _add_order_flags(parser: argparse.ArgumentParser) -> None:
    """Who orders what, and the card: the same for placing at once and through a checkout."""
    parser.add_argument(
        "--user",
        dest="user_id",
        metavar="ID",
        help="the customer (default: the one `shop login` signed in)",
    )
    parser.add_argument(
        "--item",
        dest="items",
        action="append",
        required=True,
        type=quantity_pair,
        metavar="PRODUCT=QTY",
        help="a line; repeat for more",
    )
    parser.add_argument("--card", default=TEST_CARD, help=f"card number (default {TEST_CARD})")
    parser.add_argument(
        "--exp", type=expiry, default=default_expiry(), metavar="MM/YYYY", help="card expiry"
    )
    parser.add_argument("--cvc", default="123")
    add_request_id_flag(parser)


def card(number: str, exp: tuple[int, int], cvc: str) -> payment_pb2.PaymentCard:
    month, year = exp
    return payment_pb2.PaymentCard(number=number, exp_month=month, exp_year=year, cvc=cvc)


def create_request(
    user_id: str, items: list[tuple[str, int]], payment_card: payment_pb2.PaymentCard, key: str
) -> order_pb2.CreateOrderRequest:
    return order_pb2.CreateOrderRequest(
        user_id=user_id,
        lines=[money_pb2.LineItem(product_id=p, quantity=q) for p, q in items],
        card=payment_card,
        request_id=key,
    )


async def follow(clients: Clients, order: order_pb2.Order, call_timeout: float) -> order_pb2.Order:
    """The order's final state: as given if already final, else from WatchOrder."""
    if order.status in FINAL:
        return order
    call = clients.orders.WatchOrder(
        order_pb2.WatchOrderRequest(order_id=order.order_id), timeout=call_timeout
    )
    async for update in call:
        order = update
        if order.status in FINAL:
            call.cancel()
            break
    return order


def _clients(args: argparse.Namespace) -> Clients:
    """Clients acting for the customer `shop login` signed in, if any (shop_cli.session);
    a command's --user defaults to that customer. Raises CliError when a command that names
    a customer has neither."""
    session = signed_in(os.environ)
    if hasattr(args, "user_id") and not args.user_id:
        if session is None:
            raise CliError("--user ID is required when no customer is signed in (shop login)")
        args.user_id = session.user_id
    if session is not None and client_tls(args, os.environ) == PLAINTEXT:
        print(
            "warning: sending the signed-in customer's token without TLS (--insecure): "
            "anyone on the way can read it and act as them until it expires",
            file=sys.stderr,
        )
    return Clients(args, token=None if session is None else session.access_token)


def _show(args: argparse.Namespace, order: order_pb2.Order) -> None:
    print(output.message_json(order) if args.json else views.order(order))


async def place(args: argparse.Namespace) -> int:
    acting = _clients(args)
    request = create_request(
        args.user_id, args.items, card(args.card, args.exp, args.cvc), request_id(args)
    )
    async with acting as clients:
        order = await clients.orders.CreateOrder(request, timeout=args.timeout)
        if args.wait:
            order = await follow(clients, order, args.timeout)
    _show(args, order)
    return 0


async def checkout(args: argparse.Namespace) -> int:
    """Sets each line in turn (printing the priced cart), then places the cart."""
    acting = _clients(args)
    place_order = order_pb2.PlaceOrder(
        user_id=args.user_id,
        card=card(args.card, args.exp, args.cvc),
        request_id=request_id(args),
    )
    order: order_pb2.Order | None = None
    async with acting as clients:
        session = CheckoutSession(clients.orders.Checkout(timeout=args.timeout))
        for product_id, quantity in args.items:
            cart = await session.set_line(product_id, quantity)
            if args.json:
                output.print_json_line(cart)
        if not args.json:
            print(views.cart(cart), end="\n\n", flush=True)
        async for order in session.place(place_order):
            if args.json:
                output.print_json_line(order)
    if order is None:
        raise CliError("the server ended the checkout without placing the order")
    if not args.json:
        print(views.order(order))
    return 0


async def get(args: argparse.Namespace) -> int:
    async with _clients(args) as clients:
        order = await clients.orders.GetOrder(
            order_pb2.GetOrderRequest(order_id=args.order_id), timeout=args.timeout
        )
    _show(args, order)
    return 0


async def cancel(args: argparse.Namespace) -> int:
    request = order_pb2.CancelOrderRequest(order_id=args.order_id, request_id=request_id(args))
    async with _clients(args) as clients:
        order = await clients.orders.CancelOrder(request, timeout=args.timeout)
    _show(args, order)
    return 0


async def list_all(
    clients: Clients, user_id: str, call_timeout: float, limit: int | None = None
) -> list[order_pb2.Order]:
    async def fetch(token: str) -> tuple[list[order_pb2.Order], str]:
        request = order_pb2.ListOrdersRequest(
            user_id=user_id, page_size=PAGE_SIZE, page_token=token
        )
        page = await clients.orders.ListOrders(request, timeout=call_timeout)
        return list(page.orders), page.next_page_token

    return await collect(fetch, limit)


async def list_orders(args: argparse.Namespace) -> int:
    async with _clients(args) as clients:
        found = await list_all(clients, args.user_id, args.timeout, args.limit)
    output.print_list(found, args.json, views.orders)
    return 0


async def watch(args: argparse.Namespace) -> int:
    async with _clients(args) as clients:
        call = clients.orders.WatchOrder(
            order_pb2.WatchOrderRequest(order_id=args.order_id), timeout=args.timeout
        )
        async for order in call:
            if args.json:
                output.print_json_line(order)
            else:
                print(views.order_event(order), flush=True)
    return 0
