"""changes: what a watch stream relies on to hear of a commit: woken at once for its key or for
anything, never for another key, never missing a change made while it read, polling as the
fallback for other replicas' commits, and told to go elsewhere when the server stops."""

from __future__ import annotations

import asyncio

import pytest

from shop_grpc.changes import ChangeSignal
from shop_grpc.errors import Unavailable

LONG_POLL = 30.0  # a wait that returns before this was woken, not polled


async def still_waiting(task: asyncio.Task[None]) -> bool:
    await asyncio.sleep(0.05)
    return not task.done()


async def test_a_notify_wakes_the_watchers_of_its_key_and_of_everything_at_once():
    signal = ChangeSignal(poll_seconds=LONG_POLL)
    of_a = asyncio.create_task(signal.wait(key="a"))
    of_all = asyncio.create_task(signal.wait())
    of_b = asyncio.create_task(signal.wait(key="b"))
    assert await still_waiting(of_a)

    signal.notify("a")

    await asyncio.wait_for(asyncio.gather(of_a, of_all), timeout=1)
    assert await still_waiting(of_b)
    of_b.cancel()


async def test_a_change_made_while_the_watcher_read_is_not_missed():
    signal = ChangeSignal(poll_seconds=LONG_POLL)
    seen = signal.version("a")
    signal.notify("a")  # lands between the watcher's read and its wait

    await asyncio.wait_for(signal.wait(seen, key="a"), timeout=1)

    assert signal.version("a") == seen + 1
    # Another key's change is no change of this one.
    seen = signal.version("a")
    signal.notify("b")
    waiting = asyncio.create_task(signal.wait(seen, key="a"))
    assert await still_waiting(waiting)
    waiting.cancel()


async def test_without_a_notify_the_wait_ends_after_poll_seconds():
    # The fallback that catches what another replica of the service committed.
    signal = ChangeSignal(poll_seconds=0.1)
    started = asyncio.get_running_loop().time()

    await asyncio.wait_for(signal.wait(key="a"), timeout=2)

    assert asyncio.get_running_loop().time() - started >= 0.09


async def test_closing_ends_every_watch_with_unavailable_and_refuses_new_ones():
    signal = ChangeSignal(poll_seconds=LONG_POLL)
    watchers = [asyncio.create_task(signal.wait(key=key)) for key in ("a", "b")]
    assert await still_waiting(watchers[0])

    signal.close()

    for watcher in watchers:
        with pytest.raises(Unavailable, match="watch again"):
            await asyncio.wait_for(watcher, timeout=1)
    with pytest.raises(Unavailable):
        await asyncio.wait_for(signal.wait(signal.version()), timeout=1)
