"""Reads that fan out over many items, a few at a time."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

T = TypeVar("T")

# Reads after the run fan out this wide; enough to be quick, few enough not to be load.
CHECK_CONCURRENCY = 16


async def bounded(items: Iterable[T], call: Callable[[T], Awaitable[Any]]) -> list[Any]:
    """`call` for every item, at most CHECK_CONCURRENCY at once; the results in item order.

    Raises the first exception a call raises.
    """
    limit = asyncio.Semaphore(CHECK_CONCURRENCY)

    async def one(item: T) -> Any:
        async with limit:
            return await call(item)

    return list(await asyncio.gather(*(one(item) for item in items)))
