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
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeAlias, TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf.message import Message

from shop_grpc.errors import FieldViolation, InvalidArgument
from shop_grpc.storage import Database

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
MAX_PAGE_BYTES = 3 * 1024 * 1024
"""What one page may weigh once encoded: clients refuse messages past 4 MiB by default, and
500 large items (orders of 100 lines, products with long descriptions) can weigh more."""
NONCE_BYTES = 12
SECRET_NAME = "page-tokens"

KeyValue: TypeAlias = str | int | datetime
"""What a page key is made of: ids, counters and timestamps (tz-aware, sent as ISO 8601)."""


def page_size(requested: int) -> int:
    """The page size to use: the default for 0 (AIP-158), at most MAX_PAGE_SIZE."""
    return DEFAULT_PAGE_SIZE if requested <= 0 else min(requested, MAX_PAGE_SIZE)


T = TypeVar("T")
M = TypeVar("M", bound=Message)


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list: its items, and the token of the page after it ("" on the last)."""

    items: list[T]
    next_page_token: str
    resume_after: Callable[[T], str]
    """The token of the page that starts right after an item of this page."""

    def fitted(self, to_message: Callable[[T], M]) -> tuple[list[M], str]:
        """The items as messages, as many as fit in MAX_PAGE_BYTES, and the next page's token
        (which, when some were left out, starts at the first of them: AIP-158 lets a page hold
        fewer items than asked for)."""
        messages: list[M] = []
        size = 0
        for item in self.items:
            message = to_message(item)
            size += message.ByteSize() + 8  # the field's tag and length, at most
            if size > MAX_PAGE_BYTES and messages:
                return messages, self.resume_after(self.items[len(messages) - 1])
            messages.append(message)
        return messages, self.next_page_token


async def page_of(
    fetch: Callable[[int], Awaitable[list[T]]],
    requested_size: int,
    resume_after: Callable[[T], str],
) -> Page[T]:
    """A page of at most `page_size(requested_size)` items from `fetch(limit)`, which returns up
    to `limit` items after the requested page's start in list order."""
    limit = page_size(requested_size)
    found = await fetch(limit + 1)
    items = found[:limit]
    more = len(found) > limit
    return Page(items, resume_after(items[-1]) if more else "", resume_after)


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
            # Unused low bits in the last character would let 16 spellings of one token
            # through: only the one this server writes is its token.
            if base64.urlsafe_b64encode(sealed).decode().rstrip("=") != token:
                raise _refused()
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
