from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial

import pytest
from sqlalchemy import MetaData

from shop.payment.v1 import payment_pb2_grpc
from shop_grpc.money import Money
from shop_grpc.pagination import PageTokens
from shop_grpc.storage import Database
from shop_grpc.testing import (
    database_url,  # noqa: F401  (a fixture)
    db,  # noqa: F401  (a fixture)
    serving,
    test_settings,
)
from shop_payment.adapters.orm import metadata
from shop_payment.adapters.unit_of_work import SqlUnitOfWork
from shop_payment.domain.processor import ChargeResult, DeterministicProcessor
from shop_payment.entrypoints.grpc import registration


class CountingProcessor(DeterministicProcessor):
    """The deterministic processor, counting the charges it was asked to make."""

    def __init__(self) -> None:
        self.charges = 0

    def charge(self, token: str, amount: Money) -> ChargeResult:
        self.charges += 1
        return super().charge(token, amount)


@pytest.fixture
def processor() -> CountingProcessor:
    return CountingProcessor()


@pytest.fixture
def db_metadata() -> MetaData:
    return metadata


@pytest.fixture
async def stub(
    db: Database,  # noqa: F811
    processor: CountingProcessor,
    database_url: str,  # noqa: F811
) -> AsyncIterator[payment_pb2_grpc.PaymentServiceAsyncStub]:
    settings = test_settings("payment", database_url)
    async with serving(
        settings, [registration(partial(SqlUnitOfWork, db), processor, await PageTokens.load(db))]
    ) as channel:
        yield payment_pb2_grpc.PaymentServiceStub(channel)  # type: ignore[misc]
