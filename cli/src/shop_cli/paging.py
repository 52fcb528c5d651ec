"""Reads every page of a List call."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
PAGE_SIZE = 500

# Fetches the page after `token`: its items and the next token ("" on the last page).
FetchPage = Callable[[str], Awaitable[tuple[Sequence[T], str]]]


async def collect(fetch: FetchPage[T], limit: int | None = None) -> list[T]:
    found: list[T] = []
    token = ""
    while limit is None or len(found) < limit:
        items, token = await fetch(token)
        found += items
        if not token:
            break
    return found[:limit]
