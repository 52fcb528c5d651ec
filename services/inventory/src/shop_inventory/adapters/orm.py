"""The inventory's tables (SQLAlchemy Core), all on one MetaData."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from shop_grpc.storage import UtcDateTime

metadata = MetaData()

products = Table(
    "products",
    metadata,
    Column("product_id", String(63), primary_key=True),
    Column("title", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("price_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("create_time", UtcDateTime, nullable=False),
    # The request_id that created the product, so a retried create returns it.
    Column("request_id", String(64), nullable=False, index=True),
    CheckConstraint("price_minor > 0", name="ck_products_price_positive"),
)

stock_levels = Table(
    "stock_levels",
    metadata,
    Column("product_id", String(63), ForeignKey("products.product_id"), primary_key=True),
    Column("available", BigInteger, nullable=False),
    Column("reserved", BigInteger, nullable=False),
    Column("sold", BigInteger, nullable=False),
    Column("update_time", UtcDateTime, nullable=False),
    CheckConstraint("available >= 0", name="ck_stock_available_not_negative"),
    CheckConstraint("reserved >= 0", name="ck_stock_reserved_not_negative"),
    CheckConstraint("sold >= 0", name="ck_stock_sold_not_negative"),
)

reservations = Table(
    "reservations",
    metadata,
    Column("order_id", String(128), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("total_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("expire_time", UtcDateTime, nullable=False),
    Column("create_time", UtcDateTime, nullable=False),
    Column("update_time", UtcDateTime, nullable=False),
    # The sweeper looks for pending reservations past their expiry.
    Index("ix_reservations_state_expire_time", "state", "expire_time"),
)

reservation_lines = Table(
    "reservation_lines",
    metadata,
    Column("order_id", String(128), ForeignKey("reservations.order_id"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("product_id", String(63), ForeignKey("products.product_id"), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("unit_price_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    CheckConstraint("quantity > 0", name="ck_reservation_lines_quantity_positive"),
)

import_batches = Table(
    "import_batches",
    metadata,
    Column("request_id", String(64), primary_key=True),
    # What the stream said (shop_grpc.idempotency), to tell a replay from a reused key.
    Column("request_fingerprint", String(64), nullable=False),
    Column("lines_applied", Integer, nullable=False),
    Column("create_time", UtcDateTime, nullable=False),
)
