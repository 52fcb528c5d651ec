"""The payment tables. No column can hold a card number or a CVC."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, MetaData, String, Table

from shop_grpc.storage import UtcDateTime

metadata = MetaData()

payment_methods = Table(
    "payment_methods",
    metadata,
    Column("payment_method_id", String(36), primary_key=True),
    Column("brand", String(16), nullable=False),
    Column("last4", String(4), nullable=False),
    Column("exp_month", Integer, nullable=False),
    Column("exp_year", Integer, nullable=False),
    Column("processor_token", String(64), nullable=False),
    # NULL when the caller sent no request_id: NULLs never clash in a unique index.
    Column("request_id", String(64), unique=True),
    Column("create_time", UtcDateTime, nullable=False),
)

payments = Table(
    "payments",
    metadata,
    Column("payment_id", String(36), primary_key=True),
    # At most one payment per order, even when duplicate charges race.
    Column("order_id", String(128), nullable=False, unique=True),
    Column(
        "payment_method_id",
        String(36),
        ForeignKey("payment_methods.payment_method_id"),
        nullable=False,
    ),
    Column("currency", String(3), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("refunded_minor", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("failure_code", String(64), nullable=False),
    Column("card_last4", String(4), nullable=False),
    Column("create_time", UtcDateTime, nullable=False),
    Column("update_time", UtcDateTime, nullable=False),
    Index("payments_newest_first", "create_time", "payment_id"),
)

refunds = Table(
    "refunds",
    metadata,
    Column("refund_id", String(36), primary_key=True),
    Column("payment_id", String(36), ForeignKey("payments.payment_id"), nullable=False),
    # The idempotency key: a replayed refund collides here instead of refunding twice.
    Column("request_id", String(64), nullable=False, unique=True),
    Column("currency", String(3), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    # What the request asked for (NULL: everything left), to tell a replay from a reuse.
    Column("requested_minor", BigInteger),
    Column("create_time", UtcDateTime, nullable=False),
    Index("refunds_by_payment", "payment_id"),
)
