"""The servers of `shop bench rpc` as child processes: started, awaited, read, stopped.

Each server is a process of its own, so its CPU time and memory (shop_cli.procfs) are its
own, apart from the load client's and the other servers'. Its output goes to a log file in
the run's work directory, whose tail is shown when it fails to start.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shop_cli.arguments import CliError
from shop_grpc.credentials import channel_credentials, read_material

LOG_TAIL_LINES = 20
# A channel that found nobody listening backs off for a second or more before it tries
# again; a server that is still starting should be seen as soon as it binds.
_CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 250),
]
# Settings of the environment that would change what a server measures: each plan says
# exactly which of them its server gets.
_NOT_INHERITED = ("SHOP_", "OTEL_")


@dataclass(frozen=True)
class ServerPlan:
    """One server to run: how to start it and how to reach it."""

    name: str
    """Short and unique in the run, e.g. "user-traced"; names its log file."""
    command: Sequence[str]
    env: Mapping[str, str]
    """Set on top of the inherited environment, from which SHOP_* and OTEL_* are removed."""
    port: int
    """Its mTLS port on 127.0.0.1."""
    stop_seconds: float
    """How long it may take to stop after SIGTERM before it is killed."""


@dataclass(frozen=True)
class Identity:
    """Who the load client is, and the name the servers' certificate must carry."""

    client_dir: Path
    """ca.crt, tls.crt and tls.key of the client's certificate."""
    server_name: str
    """The name every server's certificate is checked against."""


def child_environment(extra: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_NOT_INHERITED)}
    # As in the services' image: each log line reaches the file when it is written.
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


class ServerProcess:
    """A started server and the client channel to it."""

    def __init__(self, plan: ServerPlan, log_path: Path, identity: Identity) -> None:
        self.plan = plan
        self.log_path = log_path
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                list(plan.command),
                env=child_environment(plan.env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Own process group: Ctrl-C reaches only the benchmark, which stops them.
                process_group=0,
            )
        client = read_material(identity.client_dir)
        self.channel = grpc.aio.secure_channel(
            f"127.0.0.1:{plan.port}",
            channel_credentials(client),
            options=[("grpc.ssl_target_name_override", identity.server_name), *_CHANNEL_OPTIONS],
        )

    @property
    def pid(self) -> int:
        return int(self.process.pid)

    async def wait_serving(self, deadline: float) -> None:
        """Returns once Health/Check says SERVING over mTLS; raises CliError, with the log's
        tail, when the process exits first or time.monotonic() passes `deadline`."""
        health = health_pb2_grpc.HealthStub(self.channel)
        while True:
            code = self.process.poll()
            if code is not None:
                raise CliError(self._failure(f"exited with code {code} before it was ready"))
            if time.monotonic() > deadline:
                raise CliError(self._failure("was not SERVING in time"))
            with contextlib.suppress(grpc.aio.AioRpcError):
                reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            await asyncio.sleep(0.1)

    def _failure(self, what: str) -> str:
        lines = self.log_path.read_text("utf-8", "replace").splitlines()[-LOG_TAIL_LINES:]
        shown = "\n".join(f"    {line}" for line in lines) or "    (no output)"
        return f"the {self.plan.name} server {what}; last lines of {self.log_path.name}:\n{shown}"

    def terminate(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait_or_kill(self) -> int:
        """Its exit code, once it has stopped; killed after its stop_seconds."""
        try:
            return int(self.process.wait(timeout=self.plan.stop_seconds))
        except subprocess.TimeoutExpired:
            self.process.kill()
            return int(self.process.wait())


def _stop_all(started: Sequence[ServerProcess]) -> None:
    for server in started:
        server.terminate()
    for server in started:
        server.wait_or_kill()


@asynccontextmanager
async def running(
    plans: Sequence[ServerPlan], work_dir: Path, identity: Identity, ready_seconds: float
) -> AsyncIterator[list[ServerProcess]]:
    """Starts every planned server at once and waits until all are SERVING (at most
    `ready_seconds`); stops them all when the block ends."""
    started: list[ServerProcess] = []
    try:
        for plan in plans:
            started.append(ServerProcess(plan, work_dir / f"{plan.name}.log", identity))
        deadline = time.monotonic() + ready_seconds
        await asyncio.gather(*(server.wait_serving(deadline) for server in started))
        yield started
    finally:
        for server in started:
            await server.channel.close()
        # Off the event loop: traced servers export their last spans while they stop, and
        # the receiver, on this loop, must go on answering.
        await asyncio.to_thread(_stop_all, started)
