"""OrderService over gRPC: validates requests, converts proto <-> domain, calls the use cases."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import grpc

from shop.common.v1 import money_pb2
from shop.order.v1 import order_pb2, order_pb2_grpc
from shop.payment.v1 import payment_pb2
from shop_grpc.changes import ChangeSignal
from shop_grpc.errors import DeadlineExceeded
from shop_grpc.protoconv import money_to_proto, timestamp
from shop_grpc.server import Registration
from shop_grpc.validation import Violations
from shop_order.domain.cart import MAX_LINES, MAX_QUANTITY, Cart, PricedLine, cart_total
from shop_order.domain.model import Order, OrderLine, Status, Step
from shop_order.service_layer import orders
from shop_order.service_layer.ports import Card, Dependencies
from shop_order.service_layer.saga_runner import SagaRunner
from shop_order.service_layer.unit_of_work import UnitOfWorkFactory

SERVICE_NAME = order_pb2.DESCRIPTOR.services_by_name["OrderService"].full_name
MAX_ID = 64
# Time kept back from the caller's deadline to write the reply.
REPLY_MARGIN_SECONDS = 0.05


@dataclass(frozen=True)
class WaitSettings:
    default_wait_seconds: float = 30.0
    """How long CreateOrder and CancelOrder wait for a final state without a caller deadline."""


class OrderServicer(order_pb2_grpc.OrderServiceServicer):
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        deps: Dependencies,
        runner: SagaRunner,
        signal: ChangeSignal,
        waits: WaitSettings,
    ) -> None:
        self.uow = uow
        self.deps = deps
        self.runner = runner
        self.signal = signal
        self.waits = waits

    async def CreateOrder(
        self, request: order_pb2.CreateOrderRequest, context: grpc.aio.ServicerContext
    ) -> order_pb2.Order:
        with Violations() as v:
            v.required(request.user_id, "user_id")
            v.length(request.user_id, "user_id", low=1, high=MAX_ID)
            _check_lines(v, request.lines)
            _check_card(v, request.card if request.HasField("card") else None, "card")
            v.request_id(request.request_id)
        order = await orders.place_order(
            self.uow,
            self.deps.payments,
            self.runner,
            user_id=request.user_id,
            lines=[OrderLine(line.product_id, line.quantity) for line in request.lines],
            card=_card(request.card),
            request_id=request.request_id,
        )
        return await self._reply_when_final(order, context)

    async def GetOrder(
        self, request: order_pb2.GetOrderRequest, context: grpc.aio.ServicerContext
    ) -> order_pb2.Order:
        with Violations() as v:
            v.required(request.order_id, "order_id")
        return to_proto(await orders.get_order(self.uow, request.order_id))

    async def ListOrders(
        self, request: order_pb2.ListOrdersRequest, context: grpc.aio.ServicerContext
    ) -> order_pb2.ListOrdersResponse:
        with Violations() as v:
            v.required(request.user_id, "user_id")
            v.page_size(request.page_size)
        found, token = await orders.list_orders(
            self.uow, request.user_id, request.page_size, request.page_token
        )
        return order_pb2.ListOrdersResponse(
            orders=[to_proto(o) for o in found], next_page_token=token
        )

    async def CancelOrder(
        self, request: order_pb2.CancelOrderRequest, context: grpc.aio.ServicerContext
    ) -> order_pb2.Order:
        with Violations() as v:
            v.required(request.order_id, "order_id")
            v.request_id(request.request_id)
        order = await orders.cancel_order(self.uow, self.runner, request.order_id)
        return await self._reply_when_final(order, context)

    async def WatchOrder(
        self, request: order_pb2.WatchOrderRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[order_pb2.Order]:
        with Violations() as v:
            v.required(request.order_id, "order_id")
        async for order in orders.watch_order(self.uow, self.signal, request.order_id):
            yield to_proto(order)

    async def Checkout(
        self,
        request_iterator: AsyncIterator[order_pb2.CheckoutRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[order_pb2.CheckoutResponse]:
        cart = Cart()
        async for message in request_iterator:
            if message.HasField("set_line"):
                line = message.set_line
                with Violations() as v:
                    v.required(line.product_id, "set_line.product_id")
                    v.check(
                        0 <= line.quantity <= MAX_QUANTITY,
                        "set_line.quantity",
                        f"must be between 0 and {MAX_QUANTITY}",
                    )
                cart.set(line.product_id, line.quantity)
                yield order_pb2.CheckoutResponse(cart=await self._priced_cart(cart))
            elif message.HasField("place_order"):
                async for update in self._place_cart(cart, message.place_order):
                    yield update
                return
            else:
                with Violations() as v:
                    v.add("action", "must be set_line or place_order")

    async def _place_cart(
        self, cart: Cart, place: order_pb2.PlaceOrder
    ) -> AsyncIterator[order_pb2.CheckoutResponse]:
        with Violations() as v:
            v.check(not cart.is_empty, "place_order", "the cart is empty")
            v.required(place.user_id, "place_order.user_id")
            _check_card(v, place.card if place.HasField("card") else None, "place_order.card")
            v.request_id(place.request_id, "place_order.request_id")
        order = await orders.place_order(
            self.uow,
            self.deps.payments,
            self.runner,
            user_id=place.user_id,
            lines=[OrderLine(pid, qty) for pid, qty in cart.quantities.items()],
            card=_card(place.card),
            request_id=place.request_id,
        )
        async for update in orders.watch_order(self.uow, self.signal, order.order_id):
            yield order_pb2.CheckoutResponse(order=to_proto(update))

    async def _priced_cart(self, cart: Cart) -> order_pb2.Cart:
        lines: list[PricedLine] = []
        for product_id, quantity in cart.quantities.items():
            offer = await self.deps.inventory.offer(product_id)
            lines.append(
                PricedLine(product_id, offer.title, quantity, offer.unit_price, offer.available)
            )
        total = cart_total(lines)
        return order_pb2.Cart(
            lines=[
                order_pb2.CartLine(
                    product_id=line.product_id,
                    title=line.title,
                    quantity=line.quantity,
                    unit_price=money_to_proto(line.unit_price),
                    line_total=money_to_proto(line.line_total),
                    available=line.available,
                )
                for line in lines
            ],
            total=None if total is None else money_to_proto(total),
            all_available=all(line.available >= line.quantity for line in lines),
        )

    async def _reply_when_final(
        self, order: Order, context: grpc.aio.ServicerContext
    ) -> order_pb2.Order:
        """The order once final. A caller with a deadline gets DEADLINE_EXCEEDED rather than
        an order still PENDING (the saga goes on; GetOrder or WatchOrder show the outcome);
        one without gets the order as it stands after the default wait."""
        remaining = context.time_remaining()
        budget = self.waits.default_wait_seconds if remaining is None else remaining
        budget = max(budget - REPLY_MARGIN_SECONDS, 0.0)
        order = await orders.wait_until_final(self.uow, self.signal, order.order_id, budget)
        if remaining is not None and not order.is_final:
            raise DeadlineExceeded(
                f"order {order.order_id} was not final within the deadline; it is still being "
                "processed"
            )
        return to_proto(order)


def _check_lines(v: Violations, lines: Sequence[money_pb2.LineItem]) -> None:
    if not v.check(1 <= len(lines) <= MAX_LINES, "lines", f"must hold 1 to {MAX_LINES} lines"):
        return
    seen: set[str] = set()
    for i, line in enumerate(lines):
        if v.required(line.product_id, f"lines[{i}].product_id"):
            v.check(line.product_id not in seen, f"lines[{i}].product_id", "appears twice")
            seen.add(line.product_id)
        v.check(
            1 <= line.quantity <= MAX_QUANTITY,
            f"lines[{i}].quantity",
            f"must be between 1 and {MAX_QUANTITY}",
        )


def _check_card(v: Violations, card: payment_pb2.PaymentCard | None, field: str) -> None:
    """Presence and shape only; the payment service checks the number itself."""
    if card is None:
        v.add(field, "is required")
        return
    v.required(card.number, f"{field}.number")
    v.check(1 <= card.exp_month <= 12, f"{field}.exp_month", "must be between 1 and 12")
    v.check(card.exp_year > 0, f"{field}.exp_year", "is required")
    v.required(card.cvc, f"{field}.cvc")


def _card(card: payment_pb2.PaymentCard) -> Card:
    return Card(card.number, card.exp_month, card.exp_year, card.cvc)


_STATUS = {
    Status.PENDING: order_pb2.Order.STATUS_PENDING,
    Status.CONFIRMED: order_pb2.Order.STATUS_CONFIRMED,
    Status.FAILED: order_pb2.Order.STATUS_FAILED,
    Status.CANCELLED: order_pb2.Order.STATUS_CANCELLED,
}
_STEP = {step: order_pb2.Order.Step.Value(f"STEP_{step.value}") for step in Step}


def to_proto(order: Order) -> order_pb2.Order:
    return order_pb2.Order(
        order_id=order.order_id,
        user_id=order.user_id,
        lines=[
            order_pb2.OrderLine(
                product_id=line.product_id,
                quantity=line.quantity,
                unit_price=None if line.unit_price is None else money_to_proto(line.unit_price),
            )
            for line in order.lines
        ],
        total=None if order.total is None else money_to_proto(order.total),
        status=_STATUS[order.status],
        step=_STEP[order.step],
        failure_reason=order.failure_reason,
        payment_id=order.payment_id,
        request_id=order.request_id,
        create_time=timestamp(order.create_time),
        update_time=timestamp(order.update_time),
    )


def registration(servicer: OrderServicer) -> Registration:
    return Registration(
        SERVICE_NAME,
        lambda server: order_pb2_grpc.add_OrderServiceServicer_to_server(servicer, server),
    )
