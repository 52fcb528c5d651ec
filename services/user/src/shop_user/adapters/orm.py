"""The user service's tables, all on one MetaData."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)

from shop_grpc.storage import UtcDateTime

metadata = MetaData()

users = Table(
    "users",
    metadata,
    Column("user_id", String(36), primary_key=True),
    Column("username", String(32), nullable=False, unique=True),
    # Lower-cased before it is stored, so the unique constraint is case-insensitive.
    Column("email", String(254), nullable=False, unique=True),
    Column("display_name", String(100), nullable=False),
    Column("password_hash", String(200), nullable=False),
    # Idempotency key of the CreateUser that made the row; NULLs never clash.
    Column("request_id", String(64), nullable=True, unique=True),
    Column("create_time", UtcDateTime(), nullable=False),
    Column("update_time", UtcDateTime(), nullable=False),
    Index("ix_users_create_time_user_id", "create_time", "user_id"),
)

user_events = Table(
    "user_events",
    metadata,
    # INTEGER PRIMARY KEY is SQLite's rowid; BIGSERIAL on PostgreSQL.
    Column(
        "sequence",
        BigInteger().with_variant(Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    Column("kind", String(16), nullable=False),
    Column("user_id", String(36), nullable=False),
    # The user after the change, never with its password hash.
    Column("user", JSON(), nullable=False),
    Column("event_time", UtcDateTime(), nullable=False),
    # Idempotency key of the call that caused the change: one change per key, whatever its
    # kind, and a fingerprint of that call's request to tell a retry from a reuse.
    Column("request_id", String(64), nullable=True),
    Column("request_fingerprint", String(64), nullable=True),
    UniqueConstraint("request_id", name="uq_user_events_request_id"),
    # Sequence numbers are never reused, even after the newest row is gone.
    sqlite_autoincrement=True,
)
