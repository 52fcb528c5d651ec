"""Page tokens (AIP-158): opaque, tamper-evident, bound to the list that issued them.

A token is the key of the last item on a page, sealed with AES-GCM (``cryptography``) under
a key every replica of the service shares (``Database.secret``):

    token = base64url(nonce[12] || AES-GCM(key, nonce, json(key values), aad=scope))

- *Opaque*: clients cannot read or build one; the format may change without notice.
- *Tamper-evident*: any change to a token, or a token from another list, fails the
  authentication tag; the scope (the list and its filters, e.g. ``orders/<user_id>``) is the
  associated data, so a token from one user's list is refused on another's (AIP-158: the
  other request fields must match the first request's).
- *Typed*: the key's values are checked against the shape the list declares before any of
  them reaches a query.

Every failure is INVALID_ARGUMENT on ``page_token``, never a partial or wrong page.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeAlias

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shop_grpc.errors import FieldViolation, InvalidArgument
from shop_grpc.storage import Database

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
NONCE_BYTES = 12
SECRET_NAME = "page-tokens"

KeyValue: TypeAlias = str | int | datetime
"""What a page key is made of: ids, counters and timestamps (tz-aware, sent as ISO 8601)."""


def page_size(requested: int) -> int:
    """The page size to use: the default for 0 (AIP-158), at most MAX_PAGE_SIZE."""
    return DEFAULT_PAGE_SIZE if requested <= 0 else min(requested, MAX_PAGE_SIZE)


def _refused() -> InvalidArgument:
    return InvalidArgument([FieldViolation("page_token", "is not a token this list issued")])


class PageTokens:
    """Issues and reads one service's page tokens."""

    def __init__(self, key: bytes) -> None:
        """`key`: 16, 24 or 32 bytes (AES-128/192/256)."""
        self._aead = AESGCM(key)

    @classmethod
    async def load(cls, db: Database) -> PageTokens:
        """The tokens of the service whose database is `db` (its key is made on first use)."""
        return cls(await db.secret(SECRET_NAME))

    def issue(self, scope: str, key: Sequence[KeyValue]) -> str:
        """A token for the page after the item whose sort key is `key`, in list `scope`."""
        plain = json.dumps([_encode(value) for value in key], separators=(",", ":")).encode()
        nonce = os.urandom(NONCE_BYTES)
        sealed = nonce + self._aead.encrypt(nonce, plain, scope.encode())
        return base64.urlsafe_b64encode(sealed).decode().rstrip("=")

    def read(
        self, scope: str, token: str, shape: Sequence[type[KeyValue]]
    ) -> tuple[KeyValue, ...] | None:
        """The key `token` continues after, typed as `shape`; None for the first page.

        Raises InvalidArgument (``page_token``) for any token this list did not issue.
        """
        if not token:
            return None
        try:
            sealed = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            plain = self._aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], scope.encode())
            values = json.loads(plain)
        except (binascii.Error, ValueError, InvalidTag):
            raise _refused() from None
        if not isinstance(values, list) or len(values) != len(shape):
            raise _refused()
        return tuple(_decode(value, kind) for value, kind in zip(values, shape, strict=True))

    def read_time_and_id(self, scope: str, token: str) -> tuple[datetime, str] | None:
        """``read`` for lists ordered by (create_time, id)."""
        key = self.read(scope, token, (datetime, str))
        if key is None:
            return None
        time, item_id = key
        assert isinstance(time, datetime)
        assert isinstance(item_id, str)
        return time, item_id

    def read_id(self, scope: str, token: str) -> str | None:
        """``read`` for lists ordered by id alone."""
        key = self.read(scope, token, (str,))
        if key is None:
            return None
        assert isinstance(key[0], str)
        return key[0]


def _encode(value: KeyValue) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _decode(value: Any, kind: type[KeyValue]) -> KeyValue:
    if kind is datetime:
        if isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                raise _refused() from None
            if parsed.tzinfo is not None:
                return parsed
        raise _refused()
    # bool is an int to Python, never to a page key.
    if type(value) is not kind:
        raise _refused()
    return value
