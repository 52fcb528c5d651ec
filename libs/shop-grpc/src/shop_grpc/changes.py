"""Wake-ups for watch streams.

Writers call ``notify(key)`` after they commit; a watcher waits for the next
change of its key (or of anything, with no key) or, at the latest,
``poll_seconds`` — the fallback that catches changes committed by another
replica of the service. A watcher that notes ``version(key)`` before it reads
and passes it to ``wait()`` cannot miss a change made while it was reading.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Hashable

from shop_grpc.errors import Unavailable

ANY: Hashable = object()


class ChangeSignal:
    def __init__(self, poll_seconds: float = 1.0) -> None:
        self.poll_seconds = poll_seconds
        self._versions: dict[Hashable, int] = {}
        self._events: dict[Hashable, asyncio.Event] = {}
        self.closed = False

    def version(self, key: Hashable = ANY) -> int:
        return self._versions.get(key, 0)

    def notify(self, key: Hashable = ANY) -> None:
        """Wakes the watchers of `key` and those watching everything."""
        for k in {key, ANY}:
            self._versions[k] = self._versions.get(k, 0) + 1
            event = self._events.pop(k, None)
            if event is not None:
                event.set()

    def close(self) -> None:
        """Ends every watch: the server is stopping and open streams must not hold it up."""
        self.closed = True
        for event in self._events.values():
            event.set()

    async def wait(self, seen: int | None = None, key: Hashable = ANY) -> None:
        """Returns at the next change of `key` (at once if there was one since `seen`).

        Raises Unavailable once closed, so watchers reconnect to another replica.
        """
        if not self.closed and (seen is None or seen == self.version(key)):
            event = self._events.setdefault(key, asyncio.Event())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), self.poll_seconds)
        if self.closed:
            raise Unavailable("the server is shutting down; watch again")
