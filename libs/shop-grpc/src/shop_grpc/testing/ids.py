"""Ids for tests that the API accepts."""

from __future__ import annotations

import uuid


def id_for(name: str) -> str:
    """The lower-case UUID that stands for `name` in a test: the same name gives the same id.

    Ids the services issue are UUIDs (the ``server_id`` rule in shop/common/v1/rules.proto), so
    tests that make up ids use these rather than readable strings the API would refuse.
    """
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"shop-test:{name}"))
