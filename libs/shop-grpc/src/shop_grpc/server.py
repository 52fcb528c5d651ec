"""grpc.aio server bootstrap shared by every service.

Every server gets, without the service asking: the interceptor chain,
``grpc.health.v1`` with a status per service, server reflection (v1 and v1alpha:
shop_grpc.reflection), and a graceful shutdown on SIGTERM/SIGINT within one budget
(config.ShutdownSettings): health NOT_SERVING for the drain, in-flight calls get the grace
period, background work stops and resources close within their share, buffered spans are
flushed within theirs, exit 0.

A service starts in two steps (``run``): the probe port first, NOT_SERVING (and the metrics
port, shop_grpc.metrics.endpoint), then the
service's own start — waiting for its database, however long that takes — and only then
the main server, SERVING. A signal at any point stops it within the same budget, exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

import grpc
import structlog
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shop_grpc import credentials, keepalive, reflection, telemetry
from shop_grpc.config import ConfigError, Env, ServerSettings, ShutdownSettings, bound
from shop_grpc.interceptors import server_interceptors
from shop_grpc.metrics.endpoint import MetricsEndpoint
from shop_grpc.probe import ProbeServer

log = structlog.get_logger("shop_grpc.server")
SettingsT = TypeVar("SettingsT")

SERVER_OPTIONS = [
    # A second process on the same port must fail to bind, not share it silently.
    ("grpc.so_reuseport", 0),
    *keepalive.SERVER_OPTIONS,
]


def server_options(settings: ServerSettings) -> list[tuple[str, int]]:
    # Clients re-resolve DNS only when a connection closes: aging connections out is
    # what lets them find replicas added since they connected.
    return [
        *SERVER_OPTIONS,
        ("grpc.max_connection_age_ms", round(settings.max_connection_age_seconds * 1000)),
        (
            "grpc.max_connection_age_grace_ms",
            round(settings.max_connection_age_grace_seconds * 1000),
        ),
    ]


@dataclass(frozen=True)
class Registration:
    """One gRPC service to host: its full proto name and how to add it."""

    name: str
    add_to: Callable[[grpc.aio.Server], None]


class GrpcServer:
    def __init__(self, settings: ServerSettings, services: Sequence[Registration] = ()) -> None:
        self.settings = settings
        self.services: list[Registration] = []
        # Read now: a certificate file that is missing fails the start before anything waits.
        self.tls = credentials.server_tls(settings.tls)
        self.probe = ProbeServer(settings.probe_address)
        self.metrics = MetricsEndpoint(settings.metrics_address)
        self.health = self.probe.health
        self.server = grpc.aio.server(
            interceptors=server_interceptors(settings), options=server_options(settings)
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.add(services)
        self.port = 0

    def add(self, services: Sequence[Registration]) -> None:
        """Hosts `services` too; before start()."""
        for service in services:
            service.add_to(self.server)
        self.services.extend(services)

    async def start(self) -> int:
        """Binds and starts serving (the probe and metrics ports too, if they are not up yet);
        returns the bound port (useful with port 0)."""
        reflection.enable(
            self.server,
            [s.name for s in self.services]
            + [health_pb2.DESCRIPTOR.services_by_name["Health"].full_name],
        )
        with bound("SHOP_LISTEN_ADDRESS", self.settings.listen_address):
            self.port = credentials.add_port(self.server, self.settings.listen_address, self.tls)
        await self.server.start()
        await self.open_side_ports()
        return self.port

    async def open_side_ports(self) -> None:
        """The probe port (NOT_SERVING until set_serving) and the metrics port, which answer
        before the service has started; raises ConfigError if the metrics port is taken."""
        await self.probe.start()
        self.metrics.start()

    async def abandon(self) -> None:
        """Stops whatever had started, at once: for a start that failed part way."""
        await self.server.stop(0)
        await self.close_side_ports()

    async def close_side_ports(self) -> None:
        await self.probe.stop(0)
        # Its thread notices the stop within half a second; the loop does not wait meanwhile.
        await asyncio.to_thread(self.metrics.stop)

    async def set_serving(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ["", *(s.name for s in self.services)]:
            await self.health.set(name, status)

    async def stop(self, grace: float | None = None) -> None:
        """NOT_SERVING, a drain pause, then no new calls and `grace` for those in flight.

        Without `grace`, the drain and grace of the settings' shutdown budget.
        """
        await self.set_serving(False)
        if grace is None:
            await asyncio.sleep(self.settings.shutdown.drain_seconds)
            grace = self.settings.shutdown.grace_seconds
        await self.server.stop(grace)
        await self.close_side_ports()


Background = Callable[[], Coroutine[Any, Any, None]]
Cleanup = Callable[[], Awaitable[None]]
Stopping = Callable[[], None]


@dataclass(frozen=True)
class App:
    """What a service serves, once its start function (in its bootstrap) has made it."""

    services: Sequence[Registration]
    """The gRPC services to host."""
    background: Sequence[Background] = ()
    """Jobs that run while the service serves; cancelled at the stop."""
    cleanup: Sequence[Cleanup] = ()
    """Run once the background jobs are cancelled: close databases, channels."""
    stopping: Sequence[Stopping] = ()
    """Called first at the stop, e.g. to end watch streams, which would otherwise hold the
    server for its whole grace period."""


async def run(settings: ServerSettings, start: Callable[[], Awaitable[App]]) -> None:
    """Serves until SIGTERM or SIGINT, then shuts down gracefully and returns.

    The probe port comes up first, NOT_SERVING, and `start` then makes the app: it may wait
    as long as it must (for its database: Database.migrate_when_reachable), and a signal
    meanwhile cancels it and ends the run. With the app made, the main server starts, its
    background jobs run, and health turns SERVING.

    The stop keeps to the settings' shutdown budget, part by part: drain and grace
    (GrpcServer.stop), then background jobs cancelled and the app's cleanup run within
    background_seconds, then buffered spans flushed within flush_seconds (the span
    processor's own cap, shop_grpc.span_flush). The app's `stopping` callbacks run first.
    """
    server = GrpcServer(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    budget = settings.shutdown
    try:
        await server.open_side_ports()
        app = await _start_unless_stopped(start, stop, budget)
        if app is not None:
            server.add(app.services)
            port = await server.start()
    except BaseException:
        # A port that cannot be bound, say: what was started stops before the loop closes
        # (a grpc server left to the garbage collector tries to stop on a closed loop).
        await server.abandon()
        raise
    if app is None:
        await server.close_side_ports()
        telemetry.shutdown()
        log.info("stopped")
        return
    tasks = [
        asyncio.create_task(job(), name=getattr(job, "__name__", "job")) for job in app.background
    ]
    await server.set_serving(True)
    log.info("serving", address=settings.listen_address, port=port)
    await stop.wait()
    began = time.monotonic()
    log.info("shutting down", budget_seconds=round(budget.total_seconds, 3), **asdict(budget))
    for notify in app.stopping:
        notify()
    await server.stop()
    await _stop_background(tasks, app.cleanup, budget.background_seconds)
    # Last: cleanup may still end spans (the saga's), and buffered spans must go out.
    telemetry.shutdown()
    log.info("stopped", seconds=round(time.monotonic() - began, 2))


async def _start_unless_stopped(
    start: Callable[[], Awaitable[App]], stop: asyncio.Event, budget: ShutdownSettings
) -> App | None:
    """The app `start` makes, or None when `stop` is set first: the start is then cancelled
    and given the budget's background part to unwind (an attempt to connect, say)."""
    starting = asyncio.ensure_future(start())
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait({starting, stopped}, return_when=asyncio.FIRST_COMPLETED)
    if starting.done():
        stopped.cancel()
        return starting.result()
    log.info("shutting down before serving", budget_seconds=round(budget.total_seconds, 3))
    starting.cancel()
    with contextlib.suppress(asyncio.CancelledError, TimeoutError):
        async with asyncio.timeout(budget.background_seconds):
            await starting
    return None


async def _stop_background(
    tasks: Sequence[asyncio.Task[None]], cleanup: Sequence[Cleanup], seconds: float
) -> None:
    """Cancels the background jobs, then runs `cleanup`, all within `seconds`."""
    try:
        async with asyncio.timeout(seconds):
            for task in tasks:
                task.cancel()
            ended = await asyncio.gather(*tasks, return_exceptions=True)
            for task, result in zip(tasks, ended, strict=True):
                # A job that failed earlier is reported, not raised: the stop goes on.
                if isinstance(result, Exception):
                    log.error("background job had failed", job=task.get_name(), exc_info=result)
            for close in cleanup:
                await close()
    except TimeoutError:
        log.warning("background work cut short", background_seconds=seconds)


def main(
    program: str,
    load: Callable[[Env], SettingsT],
    serve: Callable[[SettingsT], Coroutine[Any, Any, None]],
) -> None:
    """A service's entry point: settings from the environment (exit 2 if bad), then serve."""
    try:
        settings = load(Env())
    except ConfigError as error:
        print(f"{program}: {error}", file=sys.stderr)
        sys.exit(2)
    try:
        asyncio.run(serve(settings))
    except ConfigError as error:  # found at start, e.g. certificate files that are missing
        print(f"{program}: {error}", file=sys.stderr)
        sys.exit(2)
