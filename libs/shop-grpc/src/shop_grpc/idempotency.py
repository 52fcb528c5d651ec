"""Idempotency keys bound to the request they came with (AIP-155).

A mutating request carries a ``request_id``. Sent again with the same content, it returns what
the first one did; sent with the same key and different content, it is refused: the key
belongs to the first request, and answering with the first request's result would hand one
caller another's data. To tell the two apart, the service stores a fingerprint of the first
request beside the key:

    fingerprint = SHA-256(deterministic serialization of the request, request_id cleared)

Secrets never enter a fingerprint: the caller passes ``redact`` to blank them first (a card's
number is reduced to its last four digits and its CVC dropped; a password is dropped), so a
stored fingerprint cannot be brute-forced back into a card number or a password.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TypeVar

from google.protobuf.message import Message

from shop_grpc.errors import AlreadyExists

REASON = "REQUEST_ID_REUSED"
M = TypeVar("M", bound=Message)


def fingerprint(*requests: M, redact: Callable[[M], None] | None = None) -> str:
    """The hex SHA-256 of `requests` (one, or every message of a stream, in order) without
    their ``request_id``, fields unknown to this server, and what `redact` blanks (or puts in
    a canonical order)."""
    digest = hashlib.sha256()
    for request in requests:
        copy = type(request)()
        copy.CopyFrom(request)
        # Fields this server does not know change nothing it does: they change no fingerprint.
        copy.DiscardUnknownFields()
        if "request_id" in copy.DESCRIPTOR.fields_by_name:
            copy.ClearField("request_id")
        if redact is not None:
            redact(copy)
        data = copy.SerializeToString(deterministic=True)
        # Length-prefixed, so two streams never hash alike by splitting bytes differently.
        digest.update(len(data).to_bytes(8, "big") + data)
    return digest.hexdigest()


class RequestIdReused(AlreadyExists):
    """ALREADY_EXISTS: the key was first used for a request with other content.

    Carries an ``ErrorInfo`` with reason ``REQUEST_ID_REUSED`` and a ``ResourceInfo`` naming
    the key, so a client can tell it from a clash of the resource's own unique fields.
    """

    def __init__(self, request_id: str) -> None:
        super().__init__(
            "request",
            request_id,
            f"request_id {request_id!r} was already used for a different request; "
            "send a new request_id for a new request",
        )
        self.reason = REASON


def check_replay(request_id: str, stored: str | None, presented: str) -> None:
    """Raises RequestIdReused unless the stored fingerprint matches the presented one.

    `stored` is None for a row written before fingerprints were kept: it is accepted.
    """
    if stored is not None and stored != presented:
        raise RequestIdReused(request_id)
