from __future__ import annotations

import grpc

from shop.common.v1 import money_pb2
from shop.inventory.v1 import inventory_pb2
from shop_grpc import pagination
from shop_grpc.testing import rpc_fails


def _create(
    product_id: str,
    request_id: str = "",
    title: str = "Mug",
    description: str = "A mug",
    price: money_pb2.Money | None = None,
) -> inventory_pb2.CreateProductRequest:
    product = inventory_pb2.Product(
        product_id=product_id,
        title=title,
        description=description,
        price=price or money_pb2.Money(currency_code="EUR", amount_minor=1250),
    )
    return inventory_pb2.CreateProductRequest(product=product, request_id=request_id)


async def test_created_product_can_be_read_with_empty_stock(inventory):
    created = await inventory.stub.CreateProduct(_create("mug-1"))

    fetched = await inventory.stub.GetProduct(inventory_pb2.GetProductRequest(product_id="mug-1"))

    assert fetched == created
    assert (fetched.title, fetched.price.amount_minor, fetched.price.currency_code) == (
        "Mug",
        1250,
        "EUR",
    )
    assert fetched.HasField("create_time")
    assert await inventory.stock("mug-1") == (0, 0, 0)


async def test_taken_id_is_already_exists_unless_same_request_id(inventory):
    first = await inventory.stub.CreateProduct(_create("mug-1", request_id="req-1"))

    repeat = await inventory.stub.CreateProduct(_create("mug-1", request_id="req-1"))
    with rpc_fails(grpc.StatusCode.ALREADY_EXISTS):
        await inventory.stub.CreateProduct(_create("mug-1", request_id="req-2"))
    with rpc_fails(grpc.StatusCode.ALREADY_EXISTS):
        await inventory.stub.CreateProduct(_create("mug-1"))

    assert repeat == first


async def test_invalid_product_names_every_bad_field(inventory):
    request = _create(
        "Bad_Id",
        title="",
        description="x" * 2001,
        price=money_pb2.Money(currency_code="usd", amount_minor=0),
    )

    bad_fields = {
        "product.product_id",
        "product.title",
        "product.description",
        "product.price.currency_code",
        "product.price",  # not positive
    }
    with rpc_fails(grpc.StatusCode.INVALID_ARGUMENT, fields=bad_fields):
        await inventory.stub.CreateProduct(request)
    with rpc_fails(grpc.StatusCode.INVALID_ARGUMENT):
        await inventory.stub.GetProduct(inventory_pb2.GetProductRequest(product_id="bad_id"))


async def test_unknown_product_is_not_found(inventory):
    with rpc_fails(grpc.StatusCode.NOT_FOUND):
        await inventory.stub.GetProduct(inventory_pb2.GetProductRequest(product_id="nope"))
    with rpc_fails(grpc.StatusCode.NOT_FOUND):
        await inventory.stub.GetStock(inventory_pb2.GetStockRequest(product_id="nope"))


async def test_list_pages_through_every_product_in_id_order(inventory):
    ids = [f"p-{n:02d}" for n in range(7)]
    for product_id in reversed(ids):
        await inventory.add_product(product_id)

    seen, token, pages = [], "", 0
    while True:
        page = await inventory.stub.ListProducts(
            inventory_pb2.ListProductsRequest(page_size=3, page_token=token)
        )
        seen += [p.product_id for p in page.products]
        pages += 1
        token = page.next_page_token
        if not token:
            break

    assert seen == ids
    assert pages == 3


async def test_list_rejects_a_forged_token(inventory):
    with rpc_fails(grpc.StatusCode.INVALID_ARGUMENT):
        await inventory.stub.ListProducts(inventory_pb2.ListProductsRequest(page_token="garbage"))


async def test_a_page_of_large_products_stays_inside_what_a_client_can_receive(inventory):
    # 420 products of 2,000 four-byte characters each weigh 3.4 MB: over the page budget, and a
    # full page of 500 such products would pass grpc's default 4 MiB limit on the client.
    for n in range(420):
        await inventory.stub.CreateProduct(
            inventory_pb2.CreateProductRequest(
                product=inventory_pb2.Product(
                    product_id=f"big-{n:03d}",
                    title="Big",
                    description="😀" * 2000,
                    price=money_pb2.Money(currency_code="USD", amount_minor=100),
                )
            )
        )
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page = await inventory.stub.ListProducts(
            inventory_pb2.ListProductsRequest(page_size=500, page_token=token)
        )
        assert page.ByteSize() <= pagination.MAX_PAGE_BYTES
        seen += [p.product_id for p in page.products]
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert seen == [f"big-{n:03d}" for n in range(420)]
    assert pages == 2
