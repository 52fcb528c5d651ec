"""gRPC clients of user, inventory and payment, behind the ports the saga uses.

Failures come back as shop_grpc.errors. No call passes a timeout: the channel's deadline
interceptor gives each one what is left of the current budget (shop_grpc.deadlines).
"""

from __future__ import annotations

import grpc

from shop.common.v1 import money_pb2
from shop.inventory.v1 import inventory_pb2, inventory_pb2_grpc
from shop.payment.v1 import payment_pb2, payment_pb2_grpc
from shop.user.v1 import user_pb2, user_pb2_grpc
from shop_grpc.money import Money
from shop_grpc.protoconv import money_from_proto, money_to_proto
from shop_grpc.status import result_of
from shop_order.domain.model import OrderLine
from shop_order.service_layer.ports import (
    Card,
    Payment,
    PaymentOutcome,
    ProductOffer,
    Reservation,
)

USER_SERVICE = "shop.user.v1.UserService"
INVENTORY_SERVICE = "shop.inventory.v1.InventoryService"
PAYMENT_SERVICE = "shop.payment.v1.PaymentService"

_OUTCOMES = {
    payment_pb2.Payment.STATUS_SUCCEEDED: PaymentOutcome.SUCCEEDED,
    payment_pb2.Payment.STATUS_DECLINED: PaymentOutcome.DECLINED,
    payment_pb2.Payment.STATUS_FAILED: PaymentOutcome.FAILED,
    payment_pb2.Payment.STATUS_REFUNDED: PaymentOutcome.REFUNDED,
}


class GrpcUsers:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.stub = user_pb2_grpc.UserServiceStub(channel)

    async def ensure_exists(self, user_id: str) -> None:
        request = user_pb2.GetUserRequest(user_id=user_id)
        await result_of(self.stub.GetUser(request))


class GrpcInventory:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.stub = inventory_pb2_grpc.InventoryServiceStub(channel)

    async def reserve(self, order_id: str, lines: list[OrderLine]) -> Reservation:
        request = inventory_pb2.ReserveItemsRequest(
            order_id=order_id,
            lines=[
                money_pb2.LineItem(product_id=line.product_id, quantity=line.quantity)
                for line in lines
            ],
        )
        reply = await result_of(self.stub.ReserveItems(request))
        return Reservation(
            lines=[
                OrderLine(line.product_id, line.quantity, money_from_proto(line.unit_price))
                for line in reply.lines
            ],
            total=money_from_proto(reply.total),
        )

    async def commit(self, order_id: str) -> None:
        request = inventory_pb2.CommitReservationRequest(order_id=order_id)
        await result_of(self.stub.CommitReservation(request))

    async def release(self, order_id: str) -> None:
        request = inventory_pb2.ReleaseReservationRequest(order_id=order_id)
        await result_of(self.stub.ReleaseReservation(request))

    async def offer(self, product_id: str) -> ProductOffer:
        product = await result_of(
            self.stub.GetProduct(inventory_pb2.GetProductRequest(product_id=product_id))
        )
        stock = await result_of(
            self.stub.GetStock(inventory_pb2.GetStockRequest(product_id=product_id))
        )
        return ProductOffer(
            product_id=product.product_id,
            title=product.title,
            unit_price=money_from_proto(product.price),
            available=stock.available,
        )


class GrpcPayments:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.stub = payment_pb2_grpc.PaymentServiceStub(channel)

    async def create_payment_method(self, card: Card, request_id: str) -> str:
        request = payment_pb2.CreatePaymentMethodRequest(
            card=payment_pb2.PaymentCard(
                number=card.number,
                exp_month=card.exp_month,
                exp_year=card.exp_year,
                cvc=card.cvc,
            ),
            request_id=request_id,
        )
        method = await result_of(self.stub.CreatePaymentMethod(request))
        return str(method.payment_method_id)

    async def charge(self, order_id: str, payment_method_id: str, amount: Money) -> Payment:
        request = payment_pb2.ChargeRequest(
            order_id=order_id,
            payment_method_id=payment_method_id,
            amount=money_to_proto(amount),
            request_id=f"charge-{order_id}",
        )
        reply = await result_of(self.stub.Charge(request))
        return Payment(reply.payment_id, _OUTCOMES[reply.status], reply.failure_code)

    async def refund_all(self, payment_id: str, request_id: str) -> None:
        request = payment_pb2.RefundRequest(payment_id=payment_id, request_id=request_id)
        await result_of(self.stub.Refund(request))
