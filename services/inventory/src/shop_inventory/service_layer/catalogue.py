"""Use cases of the product catalogue."""

from __future__ import annotations

from shop_grpc import pagination
from shop_grpc.idempotency import RequestIdReused
from shop_grpc.pagination import Page, PageTokens
from shop_inventory.domain.errors import ProductAlreadyExists, ProductNotFound
from shop_inventory.domain.model import Product, StockLevel
from shop_inventory.service_layer.unit_of_work import UnitOfWorkFactory

PAGE_SCOPE = "products"


async def create_product(uow: UnitOfWorkFactory, product: Product, request_id: str) -> Product:
    """Adds `product` with an empty stock level; a retry with the same request_id
    returns the product it created.

    Raises RequestIdReused if the request_id created a different product, and
    ProductAlreadyExists if the product id is taken by another request.
    """
    async with uow() as tx:
        if request_id and (earlier := await tx.products.created_by(request_id)):
            if not earlier.same_as(product):
                raise RequestIdReused(request_id)
            return earlier
        if await tx.products.add(product, request_id):
            await tx.stock.add(StockLevel(product.product_id, update_time=product.create_time))
            await tx.commit()
            return product
        existing = await tx.products.get(product.product_id)
        created_by = await tx.products.request_id_of(product.product_id)
    if existing is None or not request_id or created_by != request_id:
        raise ProductAlreadyExists(product.product_id)
    # The same request, committed by a concurrent call since we looked.
    if not existing.same_as(product):
        raise RequestIdReused(request_id)
    return existing


async def get_product(uow: UnitOfWorkFactory, product_id: str) -> Product:
    async with uow(readonly=True) as tx:
        product = await tx.products.get(product_id)
    if product is None:
        raise ProductNotFound(product_id)
    return product


async def list_products(
    uow: UnitOfWorkFactory, tokens: PageTokens, page_size: int, page_token: str
) -> Page[Product]:
    """One page of products in id order."""
    after = tokens.read_id(PAGE_SCOPE, page_token)

    async def fetch(limit: int) -> list[Product]:
        async with uow(readonly=True) as tx:
            return await tx.products.list_after(after, limit)

    def resume_after(product: Product) -> str:
        return tokens.issue(PAGE_SCOPE, [product.product_id])

    return await pagination.page_of(fetch, page_size, resume_after)
