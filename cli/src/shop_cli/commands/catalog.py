"""`shop products ...` and `shop stock ...`: the inventory service."""

from __future__ import annotations

import argparse
from typing import Any

import grpc

from shop.inventory.v1 import inventory_pb2
from shop_cli import output, views
from shop_cli.arguments import (
    add_json_flag,
    add_request_id_flag,
    add_timeout_flag,
    command,
    positive_int,
    quantity_pair,
    request_id,
    run_async,
)
from shop_cli.money import amount_argument, to_proto
from shop_cli.paging import PAGE_SIZE, collect
from shop_cli.targets import Clients, add_target_flags

WATCH_TIMEOUT = 3600.0


def register(subparsers: Any) -> None:
    _register_products(subparsers)
    _register_stock(subparsers)


def _register_products(subparsers: Any) -> None:
    group = subparsers.add_parser("products", help="create, read and list products")
    sub = group.add_subparsers(dest="action", required=True, metavar="ACTION")

    create_p = command(sub, "create", run_async(create_product), "add a product to the catalogue")
    create_p.add_argument("product_id", metavar="ID")
    create_p.add_argument("--title", required=True)
    create_p.add_argument(
        "--price", required=True, type=amount_argument, help="unit price, e.g. 19.99"
    )
    create_p.add_argument("--currency", default="USD", help="ISO 4217 code (default USD)")
    create_p.add_argument("--description", default="")
    add_request_id_flag(create_p)

    get_p = command(sub, "get", run_async(get_product), "show one product")
    get_p.add_argument("product_id", metavar="ID")

    list_p = command(sub, "list", run_async(list_products), "list products by id")
    list_p.add_argument("--limit", type=positive_int, help="show at most this many")

    for parser in (create_p, get_p, list_p):
        _add_common(parser)


def _register_stock(subparsers: Any) -> None:
    group = subparsers.add_parser("stock", help="read, import and watch stock levels")
    sub = group.add_subparsers(dest="action", required=True, metavar="ACTION")

    get_p = command(sub, "get", run_async(get_stock), "show a product's stock level")
    get_p.add_argument("product_id", metavar="ID")
    _add_common(get_p)

    import_p = command(
        sub, "import", run_async(import_stock), "add stock to products, all lines or none"
    )
    import_p.add_argument("lines", nargs="+", type=quantity_pair, metavar="ID=QTY")
    add_request_id_flag(import_p)
    _add_common(import_p)

    watch_p = command(sub, "watch", run_async(watch_stock), "print stock changes as they happen")
    watch_p.add_argument("product_ids", nargs="+", metavar="ID")
    add_target_flags(watch_p, "inventory")
    add_json_flag(watch_p)
    add_timeout_flag(watch_p, WATCH_TIMEOUT, "the watch; it then ends normally")


def _add_common(parser: argparse.ArgumentParser) -> None:
    add_target_flags(parser, "inventory")
    add_json_flag(parser)
    add_timeout_flag(parser)


def _show_product(args: argparse.Namespace, product: inventory_pb2.Product) -> None:
    print(output.message_json(product) if args.json else views.product(product))


async def create_product(args: argparse.Namespace) -> int:
    request = inventory_pb2.CreateProductRequest(
        product=inventory_pb2.Product(
            product_id=args.product_id,
            title=args.title,
            description=args.description,
            price=to_proto(args.price, args.currency),
        ),
        request_id=request_id(args),
    )
    async with Clients(args) as clients:
        _show_product(args, await clients.inventory.CreateProduct(request, timeout=args.timeout))
    return 0


async def get_product(args: argparse.Namespace) -> int:
    request = inventory_pb2.GetProductRequest(product_id=args.product_id)
    async with Clients(args) as clients:
        _show_product(args, await clients.inventory.GetProduct(request, timeout=args.timeout))
    return 0


async def list_products(args: argparse.Namespace) -> int:
    async with Clients(args) as clients:

        async def fetch(token: str) -> tuple[list[inventory_pb2.Product], str]:
            request = inventory_pb2.ListProductsRequest(page_size=PAGE_SIZE, page_token=token)
            page = await clients.inventory.ListProducts(request, timeout=args.timeout)
            return list(page.products), page.next_page_token

        found = await collect(fetch, args.limit)
    output.print_list(found, args.json, views.products)
    return 0


async def get_stock(args: argparse.Namespace) -> int:
    request = inventory_pb2.GetStockRequest(product_id=args.product_id)
    async with Clients(args) as clients:
        level = await clients.inventory.GetStock(request, timeout=args.timeout)
    print(output.message_json(level) if args.json else views.stock_levels([level]))
    return 0


def import_requests(
    key: str, lines: list[tuple[str, int]]
) -> list[inventory_pb2.ImportStockRequest]:
    """One stream message per line, all carrying the same idempotency key."""
    return [
        inventory_pb2.ImportStockRequest(request_id=key, product_id=product_id, quantity=quantity)
        for product_id, quantity in lines
    ]


async def import_stock(args: argparse.Namespace) -> int:
    requests = import_requests(request_id(args), args.lines)
    async with Clients(args) as clients:
        response = await clients.inventory.ImportStock(iter(requests), timeout=args.timeout)
    if args.json:
        print(output.message_json(response))
    else:
        print(f"lines applied: {response.lines_applied}\n")
        print(views.stock_levels(response.levels))
    return 0


async def watch_stock(args: argparse.Namespace) -> int:
    request = inventory_pb2.WatchStockRequest(product_ids=args.product_ids)
    async with Clients(args) as clients:
        call = clients.inventory.WatchStock(request, timeout=args.timeout)
        try:
            async for level in call:
                if args.json:
                    output.print_json_line(level)
                else:
                    print(views.stock_event(level), flush=True)
        except grpc.aio.AioRpcError as exc:
            # The watch's own deadline is how it is meant to end.
            if exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                raise
    return 0
