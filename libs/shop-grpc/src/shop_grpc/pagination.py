"""Opaque page tokens (AIP-158): base64 of the key to continue after.

A token is bound to the list it came from, so a token from another list or a
tampered one is INVALID_ARGUMENT rather than a silently wrong page.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from shop_grpc.errors import FieldViolation, InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


def page_size(requested: int) -> int:
    return DEFAULT_PAGE_SIZE if requested <= 0 else min(requested, MAX_PAGE_SIZE)


def encode(scope: str, key: list[Any]) -> str:
    raw = json.dumps({"s": scope, "k": key}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(scope: str, token: str) -> list[Any] | None:
    """The key a token continues after; None for the first page."""
    if not token:
        return None
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if data["s"] == scope and isinstance(data["k"], list):
            return list(data["k"])
    except (binascii.Error, ValueError, KeyError, TypeError):
        pass
    raise InvalidArgument([FieldViolation("page_token", "is not a token this list issued")])
