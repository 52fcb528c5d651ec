"""PaymentService over gRPC: validates requests, converts proto <-> domain, calls use cases.

The only module that touches payment_pb2. Card numbers and CVCs pass through
here on their way to the processor and are dropped with the request.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import grpc

from shop.payment.v1 import payment_pb2, payment_pb2_grpc
from shop_grpc.money import Money
from shop_grpc.pagination import PageTokens
from shop_grpc.protoconv import money_from_proto, money_to_proto, timestamp
from shop_grpc.server import Registration
from shop_grpc.storage import utcnow
from shop_grpc.validation import Violations
from shop_payment.domain.cards import Card, card_problems, normalize_number
from shop_payment.domain.model import Payment, PaymentMethod, PaymentStatus
from shop_payment.domain.processor import Processor
from shop_payment.service_layer import payments
from shop_payment.service_layer.unit_of_work import UnitOfWorkFactory
from shop_payment.spec import SPEC

SERVICE_NAME = SPEC.full_name

Clock = Callable[[], datetime]

_STATUS = {
    PaymentStatus.SUCCEEDED: payment_pb2.Payment.STATUS_SUCCEEDED,
    PaymentStatus.DECLINED: payment_pb2.Payment.STATUS_DECLINED,
    PaymentStatus.FAILED: payment_pb2.Payment.STATUS_FAILED,
    PaymentStatus.REFUNDED: payment_pb2.Payment.STATUS_REFUNDED,
}


class PaymentServicer(payment_pb2_grpc.PaymentServiceServicer):
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        processor: Processor,
        tokens: PageTokens,
        clock: Clock = utcnow,
    ) -> None:
        self.uow = uow
        self.processor = processor
        self.tokens = tokens
        self.clock = clock

    async def CreatePaymentMethod(
        self, request: payment_pb2.CreatePaymentMethodRequest, context: grpc.aio.ServicerContext
    ) -> payment_pb2.PaymentMethod:
        now = self.clock()
        card = Card(
            number=normalize_number(request.card.number),
            exp_month=request.card.exp_month,
            exp_year=request.card.exp_year,
            cvc=request.card.cvc,
        )
        # Shapes are checked by the validation interceptor (payment.proto); what needs the
        # card as a whole (digit count, Luhn, expiry against today) is checked here.
        with Violations() as v:
            for field, description in card_problems(card, now.date()):
                v.add(f"card.{field}", description)
        method = await payments.create_payment_method(
            self.uow, self.processor, card, request.request_id, now
        )
        return payment_method_to_proto(method)

    async def Charge(
        self, request: payment_pb2.ChargeRequest, context: grpc.aio.ServicerContext
    ) -> payment_pb2.Payment:
        payment = await payments.charge(
            self.uow,
            self.processor,
            request.order_id,
            request.payment_method_id,
            money_from_proto(request.amount),
            self.clock(),
        )
        return payment_to_proto(payment)

    async def Refund(
        self, request: payment_pb2.RefundRequest, context: grpc.aio.ServicerContext
    ) -> payment_pb2.Payment:
        amount: Money | None = (
            money_from_proto(request.amount) if request.HasField("amount") else None
        )
        payment = await payments.refund(
            self.uow, request.payment_id, amount, request.request_id, self.clock()
        )
        return payment_to_proto(payment)

    async def GetPayment(
        self, request: payment_pb2.GetPaymentRequest, context: grpc.aio.ServicerContext
    ) -> payment_pb2.Payment:
        return payment_to_proto(await payments.get_payment(self.uow, request.payment_id))

    async def ListPayments(
        self, request: payment_pb2.ListPaymentsRequest, context: grpc.aio.ServicerContext
    ) -> payment_pb2.ListPaymentsResponse:
        page = await payments.list_payments(
            self.uow,
            self.tokens,
            request.order_id,
            request.page_size,
            request.page_token,
        )
        found, token = page.fitted(payment_to_proto)
        return payment_pb2.ListPaymentsResponse(payments=found, next_page_token=token)


def payment_method_to_proto(method: PaymentMethod) -> payment_pb2.PaymentMethod:
    return payment_pb2.PaymentMethod(
        payment_method_id=method.payment_method_id,
        brand=method.brand,
        last4=method.last4,
        exp_month=method.exp_month,
        exp_year=method.exp_year,
        create_time=timestamp(method.create_time),
    )


def payment_to_proto(payment: Payment) -> payment_pb2.Payment:
    return payment_pb2.Payment(
        payment_id=payment.payment_id,
        order_id=payment.order_id,
        payment_method_id=payment.payment_method_id,
        amount=money_to_proto(payment.amount),
        refunded=money_to_proto(payment.refunded),
        status=_STATUS[payment.status],
        failure_code=payment.failure_code,
        card_last4=payment.card_last4,
        create_time=timestamp(payment.create_time),
        update_time=timestamp(payment.update_time),
    )


def registration(
    uow: UnitOfWorkFactory,
    processor: Processor,
    tokens: PageTokens,
    clock: Clock = utcnow,
) -> Registration:
    servicer = PaymentServicer(uow, processor, tokens, clock)
    return Registration(
        name=SERVICE_NAME,
        add_to=lambda server: payment_pb2_grpc.add_PaymentServiceServicer_to_server(
            servicer, server
        ),
    )
