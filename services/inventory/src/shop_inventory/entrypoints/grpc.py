"""The gRPC edge of the inventory: validates requests, converts proto <-> domain,
calls the use cases. The only module that touches ``*_pb2``."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import grpc

from shop.inventory.v1 import inventory_pb2, inventory_pb2_grpc
from shop_grpc import pagination
from shop_grpc.changes import ChangeSignal
from shop_grpc.money import Money
from shop_grpc.protoconv import money_to_proto, timestamp
from shop_grpc.server import Registration
from shop_grpc.storage import utcnow
from shop_grpc.validation import Violations
from shop_inventory.domain.model import Product, Reservation, ReservationState, StockLevel
from shop_inventory.service_layer import catalogue, reservations, stock
from shop_inventory.service_layer.stock import ImportLine
from shop_inventory.service_layer.unit_of_work import UnitOfWork

SERVICE_NAME = inventory_pb2.DESCRIPTOR.services_by_name["InventoryService"].full_name
PRODUCT_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
PRODUCT_ID_RULE = "1-63 lower-case letters, digits or '-', starting with a letter or digit"
PAGE_SCOPE = "products"
MAX_LINES = 100
MAX_LINE_QUANTITY = 10_000
MAX_IMPORT_MESSAGES = 10_000
MAX_IMPORT_QUANTITY = 1_000_000_000
MAX_WATCHED = 100
MAX_ORDER_ID = 128

_STATES = {
    ReservationState.PENDING: inventory_pb2.Reservation.STATE_PENDING,
    ReservationState.COMMITTED: inventory_pb2.Reservation.STATE_COMMITTED,
    ReservationState.RELEASED: inventory_pb2.Reservation.STATE_RELEASED,
    ReservationState.EXPIRED: inventory_pb2.Reservation.STATE_EXPIRED,
}

UnitOfWorkFactory = Callable[[], UnitOfWork]


class InventoryServicer(inventory_pb2_grpc.InventoryServiceServicer):
    def __init__(
        self, uow: UnitOfWorkFactory, changes: ChangeSignal, reservation_ttl: timedelta
    ) -> None:
        self._uow = uow
        self._changes = changes
        self._ttl = reservation_ttl

    async def CreateProduct(
        self, request: inventory_pb2.CreateProductRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.Product:
        _validate_create(request)
        product = _product_from_proto(request.product)
        return _product_to_proto(
            await catalogue.create_product(self._uow(), product, request.request_id)
        )

    async def GetProduct(
        self, request: inventory_pb2.GetProductRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.Product:
        _validate_product_id(request.product_id)
        return _product_to_proto(await catalogue.get_product(self._uow(), request.product_id))

    async def ListProducts(
        self, request: inventory_pb2.ListProductsRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.ListProductsResponse:
        with Violations() as v:
            v.page_size(request.page_size)
        key = pagination.decode(PAGE_SCOPE, request.page_token)
        after = str(key[0]) if key else None
        page, more = await catalogue.list_products(
            self._uow(), after, pagination.page_size(request.page_size)
        )
        token = pagination.encode(PAGE_SCOPE, [page[-1].product_id]) if more else ""
        return inventory_pb2.ListProductsResponse(
            products=[_product_to_proto(p) for p in page], next_page_token=token
        )

    async def GetStock(
        self, request: inventory_pb2.GetStockRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.StockLevel:
        _validate_product_id(request.product_id)
        return _level_to_proto(await stock.get_stock(self._uow(), request.product_id))

    async def ImportStock(
        self,
        request_iterator: AsyncIterator[inventory_pb2.ImportStockRequest],
        context: grpc.aio.ServicerContext,
    ) -> inventory_pb2.ImportStockResponse:
        messages = [message async for message in request_iterator]
        _validate_import(messages)
        lines = [ImportLine(m.product_id, m.quantity) for m in messages]
        result = await stock.import_stock(self._uow(), messages[0].request_id, lines, utcnow())
        return inventory_pb2.ImportStockResponse(
            lines_applied=result.lines_applied, levels=[_level_to_proto(x) for x in result.levels]
        )

    async def WatchStock(
        self, request: inventory_pb2.WatchStockRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[inventory_pb2.StockLevel]:
        _validate_watch(request)
        product_ids = list(request.product_ids)
        sent: dict[str, StockLevel] = {}
        while True:
            for level in await stock.get_levels(self._uow(), product_ids):
                if sent.get(level.product_id) != level:
                    sent[level.product_id] = level
                    yield _level_to_proto(level)
            # Woken by a commit here, or by the poll that catches other replicas' commits.
            await self._changes.wait()

    async def ReserveItems(
        self, request: inventory_pb2.ReserveItemsRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.Reservation:
        _validate_reserve(request)
        requested = [(line.product_id, line.quantity) for line in request.lines]
        reservation = await reservations.reserve_items(
            self._uow(), request.order_id, requested, utcnow(), self._ttl
        )
        return _reservation_to_proto(reservation)

    async def CommitReservation(
        self, request: inventory_pb2.CommitReservationRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.Reservation:
        _validate_order_id(request.order_id, request.request_id)
        return _reservation_to_proto(
            await reservations.commit_reservation(self._uow(), request.order_id, utcnow())
        )

    async def ReleaseReservation(
        self, request: inventory_pb2.ReleaseReservationRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.Reservation:
        _validate_order_id(request.order_id, request.request_id)
        return _reservation_to_proto(
            await reservations.release_reservation(self._uow(), request.order_id, utcnow())
        )

    async def GetReservation(
        self, request: inventory_pb2.GetReservationRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.Reservation:
        _validate_order_id(request.order_id)
        return _reservation_to_proto(
            await reservations.get_reservation(self._uow(), request.order_id)
        )


def registration(
    uow: UnitOfWorkFactory, changes: ChangeSignal, reservation_ttl: timedelta
) -> Registration:
    servicer = InventoryServicer(uow, changes, reservation_ttl)
    return Registration(
        SERVICE_NAME,
        lambda server: inventory_pb2_grpc.add_InventoryServiceServicer_to_server(servicer, server),
    )


# --- validation -------------------------------------------------------------


def _validate_create(request: inventory_pb2.CreateProductRequest) -> None:
    with Violations() as v:
        v.request_id(request.request_id)
        if not v.check(request.HasField("product"), "product", "is required"):
            return
        product = request.product
        v.matches(product.product_id, PRODUCT_ID, "product.product_id", PRODUCT_ID_RULE)
        v.length(product.title, "product.title", low=1, high=200)
        v.length(product.description, "product.description", low=0, high=2000)
        if v.check(product.HasField("price"), "product.price", "is required"):
            v.currency(product.price.currency_code, "product.price.currency_code")
            v.check(
                product.price.amount_minor > 0, "product.price.amount_minor", "must be positive"
            )


def _validate_product_id(product_id: str, field: str = "product_id") -> None:
    with Violations() as v:
        v.matches(product_id, PRODUCT_ID, field, PRODUCT_ID_RULE)


def _validate_import(messages: list[inventory_pb2.ImportStockRequest]) -> None:
    with Violations() as v:
        if not v.check(bool(messages), "messages", "at least one message is required"):
            return
        v.check(
            len(messages) <= MAX_IMPORT_MESSAGES,
            "messages",
            f"at most {MAX_IMPORT_MESSAGES} messages per stream",
        )
        request_id = messages[0].request_id
        v.request_id(request_id, "messages[0].request_id")
        for i, message in enumerate(messages):
            path = f"messages[{i}]"
            v.required(message.product_id, f"{path}.product_id")
            v.check(
                0 < message.quantity <= MAX_IMPORT_QUANTITY,
                f"{path}.quantity",
                f"must be between 1 and {MAX_IMPORT_QUANTITY}",
            )
            v.check(
                message.request_id == request_id,
                f"{path}.request_id",
                "must be the same on every message of the stream",
            )


def _validate_watch(request: inventory_pb2.WatchStockRequest) -> None:
    with Violations() as v:
        count = len(request.product_ids)
        v.check(1 <= count <= MAX_WATCHED, "product_ids", f"must name 1 to {MAX_WATCHED} products")
        seen: set[str] = set()
        for i, product_id in enumerate(request.product_ids):
            v.required(product_id, f"product_ids[{i}]")
            v.check(product_id not in seen, f"product_ids[{i}]", "appears more than once")
            seen.add(product_id)


def _validate_reserve(request: inventory_pb2.ReserveItemsRequest) -> None:
    with Violations() as v:
        _check_order_id(v, request.order_id)
        v.request_id(request.request_id)
        count = len(request.lines)
        v.check(1 <= count <= MAX_LINES, "lines", f"must hold 1 to {MAX_LINES} lines")
        seen: set[str] = set()
        for i, line in enumerate(request.lines):
            path = f"lines[{i}]"
            v.required(line.product_id, f"{path}.product_id")
            v.check(line.product_id not in seen, f"{path}.product_id", "appears more than once")
            seen.add(line.product_id)
            v.check(
                1 <= line.quantity <= MAX_LINE_QUANTITY,
                f"{path}.quantity",
                f"must be between 1 and {MAX_LINE_QUANTITY}",
            )


def _validate_order_id(order_id: str, request_id: str = "") -> None:
    with Violations() as v:
        _check_order_id(v, order_id)
        v.request_id(request_id)


def _check_order_id(v: Violations, order_id: str) -> None:
    if v.required(order_id, "order_id"):
        v.length(order_id, "order_id", low=1, high=MAX_ORDER_ID)


# --- conversion -------------------------------------------------------------


def _product_from_proto(message: inventory_pb2.Product) -> Product:
    return Product(
        product_id=message.product_id,
        title=message.title,
        description=message.description,
        price=Money(message.price.currency_code, message.price.amount_minor),
        create_time=utcnow(),
    )


def _product_to_proto(product: Product) -> inventory_pb2.Product:
    return inventory_pb2.Product(
        product_id=product.product_id,
        title=product.title,
        description=product.description,
        price=money_to_proto(product.price),
        create_time=timestamp(product.create_time),
    )


def _level_to_proto(level: StockLevel) -> inventory_pb2.StockLevel:
    return inventory_pb2.StockLevel(
        product_id=level.product_id,
        available=level.available,
        reserved=level.reserved,
        sold=level.sold,
        update_time=timestamp(level.update_time),
    )


def _reservation_to_proto(reservation: Reservation) -> inventory_pb2.Reservation:
    return inventory_pb2.Reservation(
        order_id=reservation.order_id,
        lines=[
            inventory_pb2.ReservedLine(
                product_id=line.product_id,
                quantity=line.quantity,
                unit_price=money_to_proto(line.unit_price),
            )
            for line in reservation.lines
        ],
        total=None if reservation.total is None else money_to_proto(reservation.total),
        state=_STATES[reservation.state],
        expire_time=timestamp(reservation.expire_time),
        create_time=timestamp(reservation.create_time),
    )
