"""The order service's tables."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from shop_grpc.config import MAX_INSTANCE_ID
from shop_grpc.storage import UtcDateTime

metadata = MetaData()

orders = Table(
    "orders",
    metadata,
    Column("order_id", String(36), primary_key=True),
    Column("user_id", String(64), nullable=False),
    Column("request_id", String(64), nullable=False, unique=True),
    Column("request_fingerprint", String(64), nullable=False, default=""),
    Column("status", String(16), nullable=False),
    Column("step", String(24), nullable=False),
    Column("undo_outcome", String(16)),
    Column("failure_reason", Text, nullable=False, default=""),
    Column("payment_method_id", String(64), nullable=False),
    Column("payment_id", String(64), nullable=False, default=""),
    Column("currency", String(3)),
    Column("total_minor", BigInteger),
    Column("cancel_requested", Boolean, nullable=False, default=False),
    Column("charge_attempted", Boolean, nullable=False, default=False),
    # Failed tries of the current step in a row: spaces its retries out, across drives.
    Column("attempts", Integer, nullable=False, default=0),
    # The replica driving the saga, which boot of it, and until when; for an order nobody
    # holds, when it is next due (null: now).
    Column("lease_owner", String(MAX_INSTANCE_ID)),
    Column("lease_token", String(36)),
    Column("lease_expires_at", UtcDateTime),
    Column("create_time", UtcDateTime, nullable=False),
    Column("update_time", UtcDateTime, nullable=False),
    Index("ix_orders_user", "user_id", "create_time"),
    Index("ix_orders_step", "step", "lease_expires_at"),
)

order_lines = Table(
    "order_lines",
    metadata,
    Column(
        "order_id", String(36), ForeignKey("orders.order_id", ondelete="CASCADE"), primary_key=True
    ),
    Column("position", Integer, primary_key=True),
    Column("product_id", String(64), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("unit_price_minor", BigInteger),
)
