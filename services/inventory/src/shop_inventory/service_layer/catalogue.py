"""Use cases of the product catalogue."""

from __future__ import annotations

from shop_grpc import pagination
from shop_grpc.idempotency import RequestIdReused
from shop_grpc.pagination import Page, PageTokens
from shop_inventory.domain.errors import ProductAlreadyExists, ProductNotFound
from shop_inventory.domain.model import Product, StockLevel
from shop_inventory.service_layer.unit_of_work import UnitOfWork

PAGE_SCOPE = "products"


async def create_product(uow: UnitOfWork, product: Product, request_id: str) -> Product:
    """Adds `product` with an empty stock level; a retry with the same request_id
    returns the product it created.

    Raises RequestIdReused if the request_id created a different product, and
    ProductAlreadyExists if the product id is taken by another request.
    """
    async with uow:
        if request_id and (earlier := await uow.products.created_by(request_id)):
            if not earlier.same_as(product):
                raise RequestIdReused(request_id)
            return earlier
        if await uow.products.add(product, request_id):
            await uow.stock.add(StockLevel(product.product_id, update_time=product.create_time))
            await uow.commit()
            return product
        existing = await uow.products.get(product.product_id)
        created_by = await uow.products.request_id_of(product.product_id)
    if existing is None or not request_id or created_by != request_id:
        raise ProductAlreadyExists(product.product_id)
    # The same request, committed by a concurrent call since we looked.
    if not existing.same_as(product):
        raise RequestIdReused(request_id)
    return existing


async def get_product(uow: UnitOfWork, product_id: str) -> Product:
    async with uow:
        product = await uow.products.get(product_id)
    if product is None:
        raise ProductNotFound(product_id)
    return product


async def list_products(
    uow: UnitOfWork, tokens: PageTokens, page_size: int, page_token: str
) -> Page[Product]:
    """One page of products in id order."""
    after = tokens.read_id(PAGE_SCOPE, page_token)

    async def fetch(limit: int) -> list[Product]:
        async with uow:
            return await uow.products.list_after(after, limit)

    def resume_after(product: Product) -> str:
        return tokens.issue(PAGE_SCOPE, [product.product_id])

    return await pagination.page_of(fetch, page_size, resume_after)
