"""PaymentService over real gRPC on loopback, on SQLite and PostgreSQL."""

import asyncio
import collections
import uuid

import grpc
from sqlalchemy import func, select

from shop.common.v1 import money_pb2
from shop.payment.v1 import payment_pb2
from shop_grpc import errors
from shop_grpc.testing import MetricChanges, rpc_fails
from shop_payment.adapters.orm import payment_methods, payments, refunds

Status = payment_pb2.Payment
APPROVED = "4242 4242 4242 4242"


def usd(amount_minor: int, currency: str = "USD") -> money_pb2.Money:
    return money_pb2.Money(currency_code=currency, amount_minor=amount_minor)


def card(number=APPROVED, exp_month=12, exp_year=2099, cvc="123") -> payment_pb2.PaymentCard:
    return payment_pb2.PaymentCard(number=number, exp_month=exp_month, exp_year=exp_year, cvc=cvc)


async def new_method(stub, number=APPROVED) -> str:
    method = await stub.CreatePaymentMethod(
        payment_pb2.CreatePaymentMethodRequest(card=card(number))
    )
    return method.payment_method_id


async def charge(stub, method_id, amount=1000, order_id=None, currency="USD"):
    return await stub.Charge(
        payment_pb2.ChargeRequest(
            order_id=order_id or str(uuid.uuid4()),
            payment_method_id=method_id,
            amount=usd(amount, currency),
        )
    )


async def refund(stub, payment_id, amount=None, request_id=None, currency="USD"):
    request = payment_pb2.RefundRequest(
        payment_id=payment_id, request_id=request_id or str(uuid.uuid4())
    )
    if amount is not None:
        request.amount.CopyFrom(usd(amount, currency))
    return await stub.Refund(request)


async def row_counts(db) -> dict[str, int]:
    async with db.session() as session:
        return {
            table.name: (
                await session.execute(select(func.count()).select_from(table))
            ).scalar_one()
            for table in (payment_methods, payments, refunds)
        }


# payment methods


async def test_payment_method_keeps_brand_last4_and_expiry(stub):
    method = await stub.CreatePaymentMethod(
        payment_pb2.CreatePaymentMethodRequest(card=card("5555 5555 5555 4444", 3, 2099))
    )
    assert uuid.UUID(method.payment_method_id).version == 4
    assert (method.brand, method.last4, method.exp_month, method.exp_year) == (
        "mastercard",
        "4444",
        3,
        2099,
    )
    assert method.create_time.seconds > 0


async def test_payment_method_request_id_is_idempotent(stub, db):
    request = payment_pb2.CreatePaymentMethodRequest(card=card(), request_id="pm-req-1")
    first = await stub.CreatePaymentMethod(request)
    again = await stub.CreatePaymentMethod(request)
    assert again.payment_method_id == first.payment_method_id
    assert (await row_counts(db))["payment_methods"] == 1
    other_card = payment_pb2.CreatePaymentMethodRequest(
        card=card("4000 0000 0000 0002"), request_id="pm-req-1"
    )
    with rpc_fails(grpc.StatusCode.ALREADY_EXISTS, reason="REQUEST_ID_REUSED") as failed:
        await stub.CreatePaymentMethod(other_card)
    assert first.payment_method_id not in str(failed.error)
    assert (await row_counts(db))["payment_methods"] == 1


BETWEEN_1_AND_12 = "must be greater than or equal to 1 and less than or equal to 12"
BAD_CARDS = [
    (card("4242 4242 4242 4241"), {"card.number": "fails the Luhn check"}),
    (card("4242"), {"card.number": "must be 12 to 19 digits"}),
    # Unicode digits: int() reads them, a card network does not.
    (card("\u00b2" * 16), {"card.number": "must be 12 to 19 digits"}),
    (card("4242424242424\u00b242"), {"card.number": "must be 12 to 19 digits"}),
    (card(cvc="\u0661\u0662\u0663"), {"card.cvc": "must be 3 or 4 digits"}),
    (card(exp_month=13), {"card.exp_month": BETWEEN_1_AND_12}),
    (card(exp_year=2001), {"card.exp_year": "is in the past"}),
    (card(cvc="12"), {"card.cvc": "must be 3 or 4 digits"}),
    (
        card("1234", exp_month=0, cvc=""),
        {
            "card.number": "must be 12 to 19 digits",
            "card.exp_month": BETWEEN_1_AND_12,
            "card.cvc": "must be 3 or 4 digits",
        },
    ),
    (None, {"card": "value is required"}),
]


async def test_bad_cards_are_invalid_argument_and_nothing_is_written(stub, db, subtests):
    for request_card, fields in BAD_CARDS:
        with subtests.test(fields=sorted(fields)):
            with rpc_fails(grpc.StatusCode.INVALID_ARGUMENT) as failed:
                await stub.CreatePaymentMethod(
                    payment_pb2.CreatePaymentMethodRequest(card=request_card)
                )
            assert {v.field: v.description for v in failed.error.violations} == fields
    assert (await row_counts(db))["payment_methods"] == 0


# charges


TEST_CARDS = [
    (APPROVED, Status.STATUS_SUCCEEDED, ""),
    ("4000 0000 0000 0002", Status.STATUS_DECLINED, "card_declined"),
    ("4000 0000 0000 9995", Status.STATUS_DECLINED, "insufficient_funds"),
    ("4000 0000 0000 0119", Status.STATUS_FAILED, "processing_error"),
    ("3782 822463 10005", Status.STATUS_SUCCEEDED, ""),
]


async def test_charge_outcome_follows_the_card(stub, subtests):
    changes = MetricChanges()
    for number, status, failure_code in TEST_CARDS:
        with subtests.test(card=number):
            method_id = await new_method(stub, number)
            payment = await charge(stub, method_id, 2500)
            assert (payment.status, payment.failure_code) == (status, failure_code)
            assert payment.amount == usd(2500)
            assert payment.refunded == usd(0)
            assert payment.card_last4 == number.replace(" ", "")[-4:]
            assert payment.payment_method_id == method_id
            got = await stub.GetPayment(
                payment_pb2.GetPaymentRequest(payment_id=payment.payment_id)
            )
            assert got == payment
    # Each charge is counted under its outcome, the name the proto gives it.
    outcomes = collections.Counter(
        payment_pb2.Payment.Status.Name(status).removeprefix("STATUS_")
        for _, status, _ in TEST_CARDS
    )
    for outcome, count in outcomes.items():
        assert changes.of("shop_payment_charges_total", status=outcome) == count


async def test_unknown_payment_method_is_not_found(stub, db):
    with rpc_fails(grpc.StatusCode.NOT_FOUND) as failed:
        await charge(stub, str(uuid.uuid4()))
    assert isinstance(failed.error, errors.NotFound)
    assert failed.error.resource_type == "payment method"
    assert (await row_counts(db))["payments"] == 0


async def test_second_charge_of_an_order_returns_the_first(stub, processor, subtests):
    first_cards = [APPROVED, "4000 0000 0000 0002", "4000 0000 0000 0119"]
    for first_card in first_cards:
        with subtests.test(first_card=first_card):
            order_id = str(uuid.uuid4())
            first = await charge(stub, await new_method(stub, first_card), order_id=order_id)
            again = await charge(stub, await new_method(stub), order_id=order_id)
            assert again == first
    assert processor.charges == len(first_cards)


async def test_second_charge_with_another_amount_is_failed_precondition(stub, processor):
    method_id = await new_method(stub)
    first = await charge(stub, method_id, 1000)
    with rpc_fails(grpc.StatusCode.FAILED_PRECONDITION, reason="ORDER_CHARGED_DIFFERENT_AMOUNT"):
        await charge(stub, method_id, 999, order_id=first.order_id)
    with rpc_fails(grpc.StatusCode.FAILED_PRECONDITION):
        await charge(stub, method_id, 1000, order_id=first.order_id, currency="EUR")
    assert processor.charges == 1


async def test_concurrent_duplicate_charges_make_one_payment(stub, processor):
    changes = MetricChanges()
    method_id = await new_method(stub)
    order_id = str(uuid.uuid4())
    results = await asyncio.gather(
        *(charge(stub, method_id, 1000, order_id=order_id) for _ in range(10))
    )
    assert len({p.payment_id for p in results}) == 1
    listed = await stub.ListPayments(payment_pb2.ListPaymentsRequest(order_id=order_id))
    assert len(listed.payments) == 1
    assert processor.charges == 1
    assert changes.of("shop_payment_charges_total", status="SUCCEEDED") == 1


BAD_CHARGES = [
    (
        payment_pb2.ChargeRequest(),
        {"order_id", "payment_method_id", "amount"},
    ),
    (
        payment_pb2.ChargeRequest(
            order_id="o", payment_method_id="not-a-uuid", amount=usd(0, "usd")
        ),
        {"order_id", "payment_method_id", "amount", "amount.currency_code"},
    ),
    (
        payment_pb2.ChargeRequest(
            order_id="o" * 129,
            payment_method_id=str(uuid.uuid4()),
            amount=usd(-5),
            request_id="r" * 65,
        ),
        {"order_id", "amount", "amount.amount_minor", "request_id"},
    ),
]


async def test_bad_charges_are_invalid_argument_and_nothing_is_written(stub, db, subtests):
    for bad, fields in BAD_CHARGES:
        with (
            subtests.test(fields=sorted(fields)),
            rpc_fails(grpc.StatusCode.INVALID_ARGUMENT, fields=fields),
        ):
            await stub.Charge(bad)
    assert (await row_counts(db))["payments"] == 0


# refunds


async def test_partial_then_full_refund(stub):
    payment = await charge(stub, await new_method(stub), 1000)
    partial = await refund(stub, payment.payment_id, 300)
    assert partial.status == Status.STATUS_SUCCEEDED
    assert partial.refunded == usd(300)
    rest = await refund(stub, payment.payment_id)
    assert rest.status == Status.STATUS_REFUNDED
    assert rest.refunded == usd(1000)
    assert rest.update_time.ToDatetime() >= partial.update_time.ToDatetime()


async def test_over_refund_is_refused_and_nothing_written(stub, db):
    payment = await charge(stub, await new_method(stub), 1000)
    await refund(stub, payment.payment_id, 600)
    with rpc_fails(grpc.StatusCode.FAILED_PRECONDITION, reason="REFUND_EXCEEDS_BALANCE"):
        await refund(stub, payment.payment_id, 401)
    got = await stub.GetPayment(payment_pb2.GetPaymentRequest(payment_id=payment.payment_id))
    assert got.refunded == usd(600)
    assert (await row_counts(db))["refunds"] == 1


async def test_fully_refunded_payment_refuses_more(stub):
    payment = await charge(stub, await new_method(stub), 1000)
    await refund(stub, payment.payment_id)
    with rpc_fails(grpc.StatusCode.FAILED_PRECONDITION, reason="PAYMENT_NOT_REFUNDABLE"):
        await refund(stub, payment.payment_id, 1)


async def test_unsuccessful_payment_cannot_be_refunded(stub, db, subtests):
    for number in ["4000 0000 0000 0002", "4000 0000 0000 0119"]:
        with subtests.test(card=number):
            payment = await charge(stub, await new_method(stub, number), 1000)
            with rpc_fails(grpc.StatusCode.FAILED_PRECONDITION, reason="PAYMENT_NOT_REFUNDABLE"):
                await refund(stub, payment.payment_id)
    assert (await row_counts(db))["refunds"] == 0


async def test_refund_in_another_currency_is_refused(stub):
    payment = await charge(stub, await new_method(stub), 1000)
    with rpc_fails(grpc.StatusCode.FAILED_PRECONDITION, reason="REFUND_CURRENCY_MISMATCH"):
        await refund(stub, payment.payment_id, 100, currency="EUR")


async def test_refund_replay_changes_nothing(stub, db):
    payment = await charge(stub, await new_method(stub), 1000)
    changes = MetricChanges()
    first = await refund(stub, payment.payment_id, 300, request_id="refund-1")
    again = await refund(stub, payment.payment_id, 300, request_id="refund-1")
    assert again == first
    assert again.refunded == usd(300)
    assert (await row_counts(db))["refunds"] == 1
    assert changes.of("shop_payment_refunds_total") == 1


async def test_refund_request_id_of_another_payment_is_already_exists(stub):
    method_id = await new_method(stub)
    one, two = await charge(stub, method_id), await charge(stub, method_id)
    await refund(stub, one.payment_id, 100, request_id="refund-1")
    for reused in (
        refund(stub, two.payment_id, 100, request_id="refund-1"),  # another payment
        refund(stub, one.payment_id, 200, request_id="refund-1"),  # another amount
        refund(stub, one.payment_id, None, request_id="refund-1"),  # everything left
    ):
        with rpc_fails(grpc.StatusCode.ALREADY_EXISTS, reason="REQUEST_ID_REUSED"):
            await reused
    assert (
        await stub.GetPayment(payment_pb2.GetPaymentRequest(payment_id=one.payment_id))
    ).refunded == usd(100)


async def test_concurrent_refunds_never_exceed_the_charge(stub, db):
    payment = await charge(stub, await new_method(stub), 1000)
    outcomes = await asyncio.gather(
        *(refund(stub, payment.payment_id, 300) for _ in range(10)), return_exceptions=True
    )
    succeeded = [o for o in outcomes if isinstance(o, payment_pb2.Payment)]
    refused = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
    assert len(succeeded) == 3
    assert {e.code() for e in refused} == {grpc.StatusCode.FAILED_PRECONDITION}
    assert len(refused) == 7
    got = await stub.GetPayment(payment_pb2.GetPaymentRequest(payment_id=payment.payment_id))
    assert got.refunded == usd(900)
    assert (await row_counts(db))["refunds"] == 3


async def test_concurrent_replays_refund_once(stub, db):
    payment = await charge(stub, await new_method(stub), 1000)
    results = await asyncio.gather(
        *(refund(stub, payment.payment_id, 250, request_id="same") for _ in range(10))
    )
    assert {r.refunded.amount_minor for r in results} == {250}
    assert (await row_counts(db))["refunds"] == 1


BAD_REFUNDS = [
    (payment_pb2.RefundRequest(), {"payment_id", "request_id"}),
    (
        payment_pb2.RefundRequest(payment_id="nope", amount=usd(0, "US"), request_id="r"),
        {"payment_id", "amount", "amount.currency_code"},
    ),
    (
        payment_pb2.RefundRequest(payment_id=str(uuid.uuid4()), request_id="r" * 65),
        {"request_id"},
    ),
]


async def test_bad_refunds_are_invalid_argument(stub, subtests):
    for bad, fields in BAD_REFUNDS:
        with (
            subtests.test(fields=sorted(fields)),
            rpc_fails(grpc.StatusCode.INVALID_ARGUMENT, fields=fields),
        ):
            await stub.Refund(bad)


async def test_refund_without_request_id_writes_nothing(stub, db):
    payment = await charge(stub, await new_method(stub), 1000)
    request = payment_pb2.RefundRequest(payment_id=payment.payment_id)
    with rpc_fails(grpc.StatusCode.INVALID_ARGUMENT):
        await stub.Refund(request)
    assert (await row_counts(db))["refunds"] == 0


async def test_refund_of_unknown_payment_is_not_found(stub):
    with rpc_fails(grpc.StatusCode.NOT_FOUND):
        await refund(stub, str(uuid.uuid4()))


# reads


async def test_get_payment_not_found_and_invalid(stub):
    with rpc_fails(grpc.StatusCode.NOT_FOUND) as failed:
        await stub.GetPayment(payment_pb2.GetPaymentRequest(payment_id=str(uuid.uuid4())))
    assert isinstance(failed.error, errors.NotFound)
    with rpc_fails(grpc.StatusCode.INVALID_ARGUMENT):
        await stub.GetPayment(payment_pb2.GetPaymentRequest(payment_id="x"))


async def test_list_payments_newest_first_in_pages(stub):
    method_id = await new_method(stub)
    created = [await charge(stub, method_id, 100 + n) for n in range(5)]
    seen, token = [], ""
    while True:
        page = await stub.ListPayments(
            payment_pb2.ListPaymentsRequest(page_size=2, page_token=token)
        )
        assert len(page.payments) <= 2
        seen += [p.payment_id for p in page.payments]
        token = page.next_page_token
        if not token:
            break
    assert seen == [p.payment_id for p in reversed(created)]


async def test_list_payments_of_one_order(stub):
    method_id = await new_method(stub)
    wanted = await charge(stub, method_id)
    await charge(stub, method_id)
    listed = await stub.ListPayments(payment_pb2.ListPaymentsRequest(order_id=wanted.order_id))
    assert [p.payment_id for p in listed.payments] == [wanted.payment_id]
    assert listed.next_page_token == ""


async def test_list_payments_rejects_bad_tokens_and_sizes(stub):
    with rpc_fails(grpc.StatusCode.INVALID_ARGUMENT) as failed:
        await stub.ListPayments(payment_pb2.ListPaymentsRequest(page_token="garbage"))
    assert failed.fields == ["page_token"]
    with rpc_fails(grpc.StatusCode.INVALID_ARGUMENT) as failed:
        await stub.ListPayments(payment_pb2.ListPaymentsRequest(page_size=501))
    assert failed.fields == ["page_size"]
