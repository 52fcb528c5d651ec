"""A client channel that presents its identity's current certificate, across rotations.

A grpc channel cannot change the certificate it presents, so `ReloadingChannel` builds a new
channel when the identity's files change (a mounted Secret is updated in place) and retires the
old one: calls in flight on it may finish for `RETIRE_GRACE_SECONDS`. Stubs built on a
`ReloadingChannel` keep working across the swap, so code holding them need not know.
`shop_grpc.channels.open_channel` makes one for every TLS channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from typing import Any

import grpc
import structlog

from shop_grpc.credentials import IdentityFiles, channel_credentials

log = structlog.get_logger("shop_grpc.channels")

RETIRE_GRACE_SECONDS = 30.0
"""How long calls in flight on a channel replaced after a rotation may still run."""
CLIENT_CHECK_SECONDS = 1.0
"""How often a channel looks at its files: at most once a second, on a call."""


class ReloadingChannel:
    """A grpc.aio.Channel look-alike presenting the identity's current certificate.

    Multi-callables (and so stubs) made from it pick the current channel on
    every call; after a rotation new calls go to a new channel while the old
    one is closed with a grace period for the calls still on it.
    """

    def __init__(
        self,
        target: str,
        files: IdentityFiles,
        options: Sequence[tuple[str, Any]],
        interceptors: Sequence[grpc.aio.ClientInterceptor],
        *,
        retire_grace: float = RETIRE_GRACE_SECONDS,
        check_seconds: float | None = None,
    ) -> None:
        self.target = target
        self.files = files
        self._options = list(options)
        self._interceptors = list(interceptors)
        self._retire_grace = retire_grace
        self._check_seconds = CLIENT_CHECK_SECONDS if check_seconds is None else check_seconds
        self._next_check = time.monotonic() + self._check_seconds
        self._retiring: set[asyncio.Task[None]] = set()
        self._stale: list[grpc.aio.Channel] = []
        self.generation = 0
        self._channel = self._build()

    def _build(self) -> grpc.aio.Channel:
        return grpc.aio.secure_channel(
            self.target,
            channel_credentials(self.files.material),
            options=self._options,
            interceptors=self._interceptors,
        )

    def current(self) -> tuple[grpc.aio.Channel, int]:
        """The channel to use now, replaced first if the files changed."""
        now = time.monotonic()
        if now >= self._next_check:
            self._next_check = now + self._check_seconds
            if self.files.refresh():
                self._rotate()
        return self._channel, self.generation

    def _rotate(self) -> None:
        old, self._channel = self._channel, self._build()
        self.generation += 1
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop to close it on now; close() will
            self._stale.append(old)
        else:
            task = loop.create_task(old.close(self._retire_grace))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)
        log.info("channel rebuilt with the new certificate", target=self.target)

    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> _MultiCallable:
        return _MultiCallable(self, "unary_unary", method, args, kwargs)

    def unary_stream(self, method: str, *args: Any, **kwargs: Any) -> _MultiCallable:
        return _MultiCallable(self, "unary_stream", method, args, kwargs)

    def stream_unary(self, method: str, *args: Any, **kwargs: Any) -> _MultiCallable:
        return _MultiCallable(self, "stream_unary", method, args, kwargs)

    def stream_stream(self, method: str, *args: Any, **kwargs: Any) -> _MultiCallable:
        return _MultiCallable(self, "stream_stream", method, args, kwargs)

    def get_state(self, try_to_connect: bool = False) -> grpc.ChannelConnectivity:
        return self.current()[0].get_state(try_to_connect)

    async def wait_for_state_change(self, last_observed_state: grpc.ChannelConnectivity) -> None:
        await self.current()[0].wait_for_state_change(last_observed_state)

    async def channel_ready(self) -> None:
        await self.current()[0].channel_ready()

    async def close(self, grace: float | None = None) -> None:
        await self._channel.close(grace)
        for stale in self._stale:
            await stale.close(grace)
        for task in list(self._retiring):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def __aenter__(self) -> ReloadingChannel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class _MultiCallable:
    """Stands for one method on a ReloadingChannel; follows it to its current channel."""

    def __init__(
        self,
        owner: ReloadingChannel,
        kind: str,
        method: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        self._owner = owner
        self._kind = kind
        self._method = method
        self._args = args
        self._kwargs = kwargs
        self._generation = -1
        self._callable: Any = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        channel, generation = self._owner.current()
        if generation != self._generation:
            make = getattr(channel, self._kind)
            self._callable = make(self._method, *self._args, **self._kwargs)
            self._generation = generation
        return self._callable(*args, **kwargs)
