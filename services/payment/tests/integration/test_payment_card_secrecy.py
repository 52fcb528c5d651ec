"""No card number or CVC survives a request: not in the database file, not in any log line."""

import io
import logging
import re
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import grpc
import pytest
import structlog

from shop.common.v1 import money_pb2
from shop.payment.v1 import payment_pb2, payment_pb2_grpc
from shop_grpc import testing
from shop_grpc.pagination import PageTokens
from shop_grpc.testing import id_for, rpc_fails
from shop_payment.adapters.orm import metadata
from shop_payment.adapters.unit_of_work import SqlUnitOfWork
from shop_payment.domain.processor import DeterministicProcessor
from shop_payment.entrypoints.grpc import registration

NUMBER = "4012888888881881"
CVC = "8317"


def secrets_in(data: bytes) -> list[str]:
    found = []
    for shown in (NUMBER, " ".join(re.findall("....", NUMBER)), NUMBER[:-4]):
        if shown.encode() in data:
            found.append(shown)
    # A four-digit run can occur by chance inside ids and timestamps; a stored CVC
    # would stand on its own, not inside a longer token.
    if re.search(rb"(?<![0-9A-Za-z-])" + CVC.encode() + rb"(?![0-9A-Za-z-])", data):
        found.append("cvc")
    return found


def database_files(directory: Path) -> tuple[list[str], bytes]:
    """The SQLite file and its journals (WAL, shared memory), concatenated."""
    files = sorted(directory.glob("payment.db*"))
    return [path.name for path in files], b"".join(path.read_bytes() for path in files)


@pytest.fixture
def structlog_output() -> Iterator[io.StringIO]:
    """Every structlog line, rendered as JSON the way the service writes it."""
    buffer = io.StringIO()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        logger_factory=structlog.PrintLoggerFactory(buffer),
        cache_logger_on_first_use=False,
    )
    yield buffer
    structlog.reset_defaults()


async def test_card_number_and_cvc_are_never_stored_or_logged(
    tmp_path: Path, structlog_output, caplog, capfd
):
    caplog.set_level(logging.DEBUG)
    url = f"sqlite:///{tmp_path / 'payment.db'}"
    # Imported through the module: a bare test_settings would be collected as a test.
    settings = testing.test_settings("payment", url)
    async with (
        testing.migrated_database(url, metadata) as db,
        testing.serving(
            settings,
            [
                registration(
                    partial(SqlUnitOfWork, db), DeterministicProcessor(), await PageTokens.load(db)
                )
            ],
        ) as channel,
    ):
        stub = payment_pb2_grpc.PaymentServiceStub(channel)
        card = payment_pb2.PaymentCard(number=NUMBER, exp_month=12, exp_year=2099, cvc=CVC)
        method = await stub.CreatePaymentMethod(payment_pb2.CreatePaymentMethodRequest(card=card))
        payment = await stub.Charge(
            payment_pb2.ChargeRequest(
                order_id=id_for("order-1"),
                payment_method_id=method.payment_method_id,
                amount=money_pb2.Money(currency_code="USD", amount_minor=4200),
            )
        )
        await stub.Refund(
            payment_pb2.RefundRequest(
                payment_id=payment.payment_id,
                amount=money_pb2.Money(currency_code="USD", amount_minor=200),
                request_id="refund-1",
            )
        )
        expired = payment_pb2.PaymentCard(number=NUMBER, exp_month=1, exp_year=2001, cvc=CVC)
        with rpc_fails(grpc.StatusCode.INVALID_ARGUMENT, field="card.exp_year") as rejected:
            await stub.CreatePaymentMethod(payment_pb2.CreatePaymentMethodRequest(card=expired))

    assert payment.status == payment_pb2.Payment.STATUS_SUCCEEDED
    assert secrets_in(rejected.details.encode()) == []
    files, stored = database_files(tmp_path)
    # The scan looks where the payment really is.
    assert payment.payment_id.encode() in stored
    assert secrets_in(stored) == [], files

    out, err = capfd.readouterr()
    logged = "\n".join([structlog_output.getvalue(), caplog.text, out, err])
    # The capture really saw the charge and the refund lines.
    assert '"event": "charge"' in logged
    assert '"event": "refund"' in logged
    assert '"last4": "1881"' in logged
    assert secrets_in(logged.encode()) == []
