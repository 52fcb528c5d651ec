"""Wake-ups for watch streams.

Writers call ``notify()`` after they commit; a watcher waits for the next
notification or, at the latest, ``poll_seconds`` — the fallback that catches
changes committed by another replica of the service. A watcher that notes
``version`` before it reads and passes it to ``wait()`` cannot miss a change
made while it was reading.
"""

from __future__ import annotations

import asyncio
import contextlib


class ChangeSignal:
    def __init__(self, poll_seconds: float = 1.0) -> None:
        self.poll_seconds = poll_seconds
        self.version = 0
        self._event = asyncio.Event()

    def notify(self) -> None:
        # Wake everyone waiting now, then arm a fresh event for the next change.
        self.version += 1
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, seen: int | None = None) -> None:
        """Returns at the next change (at once if there was one since `seen`) or poll time."""
        if seen is not None and seen != self.version:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), self.poll_seconds)
