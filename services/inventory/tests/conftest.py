from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

import pytest
from sqlalchemy import MetaData

from shop.common.v1 import money_pb2
from shop.inventory.v1 import inventory_pb2, inventory_pb2_grpc
from shop_grpc.changes import ChangeSignal
from shop_grpc.pagination import PageTokens
from shop_grpc.storage import Database
from shop_grpc.testing import database_url, db, serving, test_settings  # noqa: F401
from shop_inventory.adapters.orm import metadata
from shop_inventory.adapters.unit_of_work import SqlUnitOfWork
from shop_inventory.entrypoints.grpc import registration
from shop_inventory.service_layer.unit_of_work import UnitOfWorkFactory


@dataclass
class Inventory:
    """A running inventory server, its stub and its storage."""

    stub: inventory_pb2_grpc.InventoryServiceAsyncStub
    uow: UnitOfWorkFactory
    changes: ChangeSignal

    async def add_product(
        self, product_id: str, price_minor: int = 1000, currency: str = "USD", stock: int = 0
    ) -> inventory_pb2.Product:
        product: inventory_pb2.Product = await self.stub.CreateProduct(
            inventory_pb2.CreateProductRequest(
                product=inventory_pb2.Product(
                    product_id=product_id,
                    title=f"Product {product_id}",
                    price=money_pb2.Money(currency_code=currency, amount_minor=price_minor),
                )
            )
        )
        if stock:
            await self.import_stock([(product_id, stock)])
        return product

    async def import_stock(
        self, lines: list[tuple[str, int]], request_id: str = ""
    ) -> inventory_pb2.ImportStockResponse:
        async def messages() -> AsyncIterator[inventory_pb2.ImportStockRequest]:
            for product_id, quantity in lines:
                yield inventory_pb2.ImportStockRequest(
                    request_id=request_id, product_id=product_id, quantity=quantity
                )

        response: inventory_pb2.ImportStockResponse = await self.stub.ImportStock(messages())
        return response

    async def stock(self, product_id: str) -> tuple[int, int, int]:
        level = await self.stub.GetStock(inventory_pb2.GetStockRequest(product_id=product_id))
        return level.available, level.reserved, level.sold

    async def reserve(self, order_id: str, *lines: tuple[str, int]) -> inventory_pb2.Reservation:
        request = inventory_pb2.ReserveItemsRequest(
            order_id=order_id,
            lines=[money_pb2.LineItem(product_id=p, quantity=q) for p, q in lines],
        )
        reservation: inventory_pb2.Reservation = await self.stub.ReserveItems(request)
        return reservation


@pytest.fixture
def db_metadata() -> MetaData:
    return metadata


@pytest.fixture
def reservation_ttl() -> timedelta:
    return timedelta(minutes=10)


@pytest.fixture
async def inventory(
    db: Database,  # noqa: F811
    database_url: str,  # noqa: F811
    reservation_ttl: timedelta,
) -> AsyncIterator[Inventory]:
    changes = ChangeSignal(poll_seconds=0.2)
    uow = partial(SqlUnitOfWork, db, changes)
    settings = test_settings("inventory", database_url)
    async with serving(
        settings, [registration(uow, changes, reservation_ttl, await PageTokens.load(db))]
    ) as channel:
        stub = inventory_pb2_grpc.InventoryServiceStub(channel)
        yield Inventory(stub, uow, changes)
