"""The seed phase: what a run creates for itself before any load."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass

from shop.inventory.v1 import inventory_pb2
from shop.user.v1 import user_pb2
from shop_cli import consistency
from shop_cli.money import to_proto
from shop_cli.targets import Clients

PRICES = {"a": 300, "b": 750, "c": 1999}
"""Each product's suffix and price, in USD minor units."""
# So many that no run sells out: a short line would fail orders for a reason other than load.
INITIAL_STOCK = 10_000_000


@dataclass(frozen=True)
class Fixture:
    """What the run created for itself: products only it orders, and its one customer."""

    product_ids: list[str]
    user_id: str
    initial: dict[str, consistency.StockFacts]
    """Each product's stock right after the import, by product id."""


async def seed(clients: Clients, call_timeout: float) -> Fixture:
    """Creates the run's products (ids `bench-<random hex>-<suffix>`), imports their stock and
    creates its user; each call has `call_timeout` seconds. Raises grpc.aio.AioRpcError when
    a call fails."""
    suffix = secrets.token_hex(4)
    product_ids = [f"bench-{suffix}-{name}" for name in PRICES]
    for product_id, price in zip(product_ids, PRICES.values(), strict=True):
        await clients.inventory.CreateProduct(
            inventory_pb2.CreateProductRequest(
                product=inventory_pb2.Product(
                    product_id=product_id, title=f"Bench {product_id}", price=to_proto(price, "USD")
                ),
                request_id=str(uuid.uuid4()),
            ),
            timeout=call_timeout,
        )
    key = str(uuid.uuid4())
    imported = await clients.inventory.ImportStock(
        iter(
            inventory_pb2.ImportStockRequest(request_id=key, product_id=p, quantity=INITIAL_STOCK)
            for p in product_ids
        ),
        timeout=call_timeout,
    )
    user = await clients.users.CreateUser(
        user_pb2.CreateUserRequest(
            user=user_pb2.User(username=f"bench-{suffix}", email=f"bench-{suffix}@example.com"),
            password=secrets.token_urlsafe(16),
            request_id=str(uuid.uuid4()),
        ),
        timeout=call_timeout,
    )
    initial = {
        level.product_id: consistency.StockFacts(level.available, level.reserved)
        for level in imported.levels
    }
    return Fixture(product_ids, user.user_id, initial)
