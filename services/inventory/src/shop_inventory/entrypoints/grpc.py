"""The gRPC edge of the inventory: validates requests, converts proto <-> domain,
calls the use cases. The only module that touches ``*_pb2``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import grpc

from shop.inventory.v1 import inventory_pb2, inventory_pb2_grpc
from shop_grpc.changes import ChangeSignal
from shop_grpc.errors import FieldViolation, InvalidArgument
from shop_grpc.idempotency import fingerprint
from shop_grpc.money import Money
from shop_grpc.pagination import PageTokens
from shop_grpc.protoconv import money_to_proto, timestamp
from shop_grpc.server import Registration
from shop_grpc.storage import utcnow
from shop_grpc.validation import Violations
from shop_inventory.domain.model import Product, Reservation, ReservationState, StockLevel
from shop_inventory.service_layer import catalogue, reservations, stock
from shop_inventory.service_layer.stock import ImportLine
from shop_inventory.service_layer.unit_of_work import UnitOfWorkFactory
from shop_inventory.spec import SPEC

SERVICE_NAME = SPEC.full_name
MAX_IMPORT_MESSAGES = 10_000

_STATES = {
    ReservationState.PENDING: inventory_pb2.Reservation.STATE_PENDING,
    ReservationState.COMMITTED: inventory_pb2.Reservation.STATE_COMMITTED,
    ReservationState.RELEASED: inventory_pb2.Reservation.STATE_RELEASED,
    ReservationState.EXPIRED: inventory_pb2.Reservation.STATE_EXPIRED,
}


class InventoryServicer(inventory_pb2_grpc.InventoryServiceServicer):
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        changes: ChangeSignal,
        reservation_ttl: timedelta,
        tokens: PageTokens,
    ) -> None:
        self._tokens = tokens
        self._uow = uow
        self._changes = changes
        self._ttl = reservation_ttl

    async def CreateProduct(
        self, request: inventory_pb2.CreateProductRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.Product:
        product = _product_from_proto(request.product)
        return _product_to_proto(
            await catalogue.create_product(self._uow, product, request.request_id)
        )

    async def GetProduct(
        self, request: inventory_pb2.GetProductRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.Product:
        return _product_to_proto(await catalogue.get_product(self._uow, request.product_id))

    async def ListProducts(
        self, request: inventory_pb2.ListProductsRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.ListProductsResponse:
        page = await catalogue.list_products(
            self._uow, self._tokens, request.page_size, request.page_token
        )
        products, token = page.fitted(_product_to_proto)
        return inventory_pb2.ListProductsResponse(products=products, next_page_token=token)

    async def GetStock(
        self, request: inventory_pb2.GetStockRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.StockLevel:
        return _level_to_proto(await stock.get_stock(self._uow, request.product_id))

    async def ImportStock(
        self,
        request_iterator: AsyncIterator[inventory_pb2.ImportStockRequest],
        context: grpc.aio.ServicerContext,
    ) -> inventory_pb2.ImportStockResponse:
        messages = await _read_import(request_iterator)
        lines = [ImportLine(m.product_id, m.quantity) for m in messages]
        result = await stock.import_stock(
            self._uow, messages[0].request_id, fingerprint(*messages), lines, utcnow()
        )
        return inventory_pb2.ImportStockResponse(
            lines_applied=result.lines_applied, levels=[_level_to_proto(x) for x in result.levels]
        )

    async def WatchStock(
        self, request: inventory_pb2.WatchStockRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[inventory_pb2.StockLevel]:
        product_ids = list(request.product_ids)
        sent: dict[str, StockLevel] = {}
        while True:
            for level in await stock.get_levels(self._uow, product_ids):
                if sent.get(level.product_id) != level:
                    sent[level.product_id] = level
                    yield _level_to_proto(level)
            # Woken by a commit here, or by the poll that catches other replicas' commits.
            await self._changes.wait()

    async def ReserveItems(
        self, request: inventory_pb2.ReserveItemsRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.Reservation:
        requested = [(line.product_id, line.quantity) for line in request.lines]
        reservation = await reservations.reserve_items(
            self._uow, request.order_id, requested, utcnow(), self._ttl
        )
        return _reservation_to_proto(reservation)

    async def CommitReservation(
        self, request: inventory_pb2.CommitReservationRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.Reservation:
        return _reservation_to_proto(
            await reservations.commit_reservation(self._uow, request.order_id, utcnow())
        )

    async def ReleaseReservation(
        self, request: inventory_pb2.ReleaseReservationRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.Reservation:
        return _reservation_to_proto(
            await reservations.release_reservation(self._uow, request.order_id, utcnow())
        )

    async def GetReservation(
        self, request: inventory_pb2.GetReservationRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.Reservation:
        return _reservation_to_proto(
            await reservations.get_reservation(self._uow, request.order_id)
        )


def registration(
    uow: UnitOfWorkFactory, changes: ChangeSignal, reservation_ttl: timedelta, tokens: PageTokens
) -> Registration:
    servicer = InventoryServicer(uow, changes, reservation_ttl, tokens)
    return Registration(
        SERVICE_NAME,
        lambda server: inventory_pb2_grpc.add_InventoryServiceServicer_to_server(servicer, server),
    )


# --- validation -------------------------------------------------------------
# Each message's fields are checked against inventory.proto by the validation interceptor;
# what remains is what no single message can say.


async def _read_import(
    requests: AsyncIterator[inventory_pb2.ImportStockRequest],
) -> list[inventory_pb2.ImportStockRequest]:
    """The whole stream, refusing it as soon as it grows past the limit."""
    messages: list[inventory_pb2.ImportStockRequest] = []
    async for message in requests:
        if len(messages) == MAX_IMPORT_MESSAGES:
            raise InvalidArgument(
                [FieldViolation("requests", f"must have at most {MAX_IMPORT_MESSAGES} messages")]
            )
        messages.append(message)
    with Violations() as v:
        if v.check(bool(messages), "requests", "must have at least one message"):
            request_id = messages[0].request_id
            for i, message in enumerate(messages):
                v.check(
                    message.request_id == request_id,
                    f"requests[{i}].request_id",
                    "must be the same on every message of the stream",
                )
    return messages


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
