"""OrderService over gRPC: validates requests, converts proto <-> domain, calls the use cases.

Every method acts for the caller the caller check bound (shop_grpc.principal): a customer's
user id comes from their access token, and the use cases hold them to their own orders.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator

import grpc

from shop.common.v1 import money_pb2
from shop.order.v1 import order_pb2, order_pb2_grpc
from shop.payment.v1 import payment_pb2
from shop_grpc.changes import ChangeSignal
from shop_grpc.errors import DeadlineExceeded, FieldViolation, InvalidArgument
from shop_grpc.idempotency import fingerprint
from shop_grpc.pagination import PageTokens
from shop_grpc.principal import current
from shop_grpc.protoconv import money_to_proto, timestamp
from shop_grpc.server import Registration
from shop_grpc.validation import Violations, check_message
from shop_order.domain.cart import Cart, PricedLine
from shop_order.domain.model import Order, OrderLine, Status, Step
from shop_order.service_layer import orders
from shop_order.service_layer.orders import WaitSettings
from shop_order.service_layer.ports import Card, Dependencies
from shop_order.service_layer.saga_runner import SagaRunner
from shop_order.service_layer.unit_of_work import UnitOfWorkFactory
from shop_order.spec import SPEC

SERVICE_NAME = SPEC.full_name
# Time kept back from the caller's deadline to write the reply.
REPLY_MARGIN_SECONDS = 0.05


class OrderServicer(order_pb2_grpc.OrderServiceServicer):
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        deps: Dependencies,
        runner: SagaRunner,
        signal: ChangeSignal,
        waits: WaitSettings,
        tokens: PageTokens,
    ) -> None:
        self.tokens = tokens
        self.uow = uow
        self.deps = deps
        self.runner = runner
        self.signal = signal
        self.waits = waits

    async def CreateOrder(
        self, request: order_pb2.CreateOrderRequest, context: grpc.aio.ServicerContext
    ) -> order_pb2.Order:
        # Field rules: order.proto, checked by the validation interceptor.
        order = await self._place(request)
        return await self._reply_when_final(order, context)

    async def GetOrder(
        self, request: order_pb2.GetOrderRequest, context: grpc.aio.ServicerContext
    ) -> order_pb2.Order:
        return to_proto(await orders.get_order(self.uow, request.order_id, current()))

    async def ListOrders(
        self, request: order_pb2.ListOrdersRequest, context: grpc.aio.ServicerContext
    ) -> order_pb2.ListOrdersResponse:
        page = await orders.list_orders(
            self.uow,
            self.tokens,
            request.user_id,
            request.page_size,
            request.page_token,
            current(),
        )
        found, token = page.fitted(to_proto)
        return order_pb2.ListOrdersResponse(orders=found, next_page_token=token)

    async def CancelOrder(
        self, request: order_pb2.CancelOrderRequest, context: grpc.aio.ServicerContext
    ) -> order_pb2.Order:
        order = await orders.cancel_order(self.uow, self.runner, request.order_id, current())
        return await self._reply_when_final(order, context)

    async def WatchOrder(
        self, request: order_pb2.WatchOrderRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[order_pb2.Order]:
        watched = orders.watch_order(self.uow, self.signal, request.order_id, current())
        async for order in watched:
            yield to_proto(order)

    async def Checkout(
        self,
        request_iterator: AsyncIterator[order_pb2.CheckoutRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[order_pb2.CheckoutResponse]:
        # Each message's fields are checked by the validation interceptor as it arrives.
        cart = Cart()
        index = 0
        async for message in request_iterator:
            if message.HasField("set_line"):
                with _fields_under(f"requests[{index}]."):
                    await self._set_line(cart, message.set_line)
                yield order_pb2.CheckoutResponse(cart=_cart_to_proto(cart))
            else:
                prefix = f"requests[{index}].place_order."
                async for update in self._place_cart(cart, message.place_order, prefix):
                    yield update
                return
            index += 1

    async def _place(self, request: order_pb2.CreateOrderRequest) -> Order:
        """Places a valid CreateOrderRequest: the one path of CreateOrder and Checkout."""
        return await orders.place_order(
            self.uow,
            self.deps.payments,
            self.runner,
            user_id=request.user_id,
            lines=[OrderLine(line.product_id, line.quantity) for line in request.lines],
            card=_card(request.card),
            request_id=request.request_id,
            fingerprint=fingerprint(request, redact=_canonical),
            caller=current(),
        )

    async def _place_cart(
        self, cart: Cart, place: order_pb2.PlaceOrder, prefix: str
    ) -> AsyncIterator[order_pb2.CheckoutResponse]:
        with Violations() as v:
            v.check(not cart.is_empty, prefix.rstrip("."), "the cart is empty")
        request = order_pb2.CreateOrderRequest(
            user_id=place.user_id,
            lines=[
                money_pb2.LineItem(product_id=product_id, quantity=quantity)
                for product_id, quantity in cart.quantities.items()
            ],
            card=place.card,
            request_id=place.request_id,
        )
        # The same rules as CreateOrder, whatever path the lines took into the cart.
        check_message(request, prefix)
        # The card's violations (from the payment service) name CreateOrderRequest's fields,
        # which are this message's fields too.
        with _fields_under(prefix):
            order = await self._place(request)
        watched = orders.watch_order(self.uow, self.signal, order.order_id, current())
        async for update in watched:
            yield order_pb2.CheckoutResponse(order=to_proto(update))

    async def _set_line(self, cart: Cart, line: order_pb2.SetCartLine) -> None:
        """Prices the line being set, and only it: a cart of n lines costs n lookups in all,
        not one per line at every change."""
        if line.quantity == 0:
            cart.remove(line.product_id)
            return
        cart.check_room_for(line.product_id)
        offer = await self.deps.inventory.offer(line.product_id)
        cart.set(
            PricedLine(
                line.product_id, offer.title, line.quantity, offer.unit_price, offer.available
            )
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
        order = await orders.wait_until_final(self.uow, self.runner, order.order_id, budget)
        if remaining is not None and not order.is_final:
            raise DeadlineExceeded(
                f"order {order.order_id} was not final within the deadline; it is still being "
                "processed"
            )
        return to_proto(order)


@contextlib.contextmanager
def _fields_under(prefix: str) -> Iterator[None]:
    """Names the fields of an InvalidArgument raised inside as parts of a larger request."""
    try:
        yield
    except InvalidArgument as error:
        raise InvalidArgument(
            [FieldViolation(prefix + v.field, v.description) for v in error.violations]
        ) from error


def _canonical(request: order_pb2.CreateOrderRequest) -> None:
    """What identifies an order request: its lines in product order (each product appears
    once, so their order says nothing), and of the card only what may be kept, its last four
    digits and its expiry."""
    request.lines.sort(key=lambda line: line.product_id)
    request.card.number = request.card.number.replace(" ", "")[-4:]
    request.card.ClearField("cvc")


def _cart_to_proto(cart: Cart) -> order_pb2.Cart:
    total = cart.total
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
            for line in cart.lines.values()
        ],
        total=None if total is None else money_to_proto(total),
        all_available=cart.all_available,
    )


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
