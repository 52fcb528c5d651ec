"""What `shop bench rpc` compares: its servers, the calls made to them, and the ratios shown.

Servers, each a process of its own, all with the same mTLS (the user service's certificate,
client certificates of the same CA required; the load client shows the `shop` CLI's):

    bare          grpc.aio and the standard health service, nothing else (bare_server)
    shop          the shared runtime as services run it, with no service (shop_server)
    user          the user service on SQLite holding one user, tracing off, metrics on
    user-unmetered  the same with metrics off (SHOP_METRICS_ADDRESS=off)
    user-traced   the same, tracing every call (always_on), exporting to the run's OTLP sink
    user-sampled  the same, tracing a tenth of the calls that arrive without a trace
                  (parentbased_traceidratio 0.1), exporting to the sink

Variants are a call to a server: Health/Check (a null RPC) to bare, shop and user; GetUser (a
primary-key read) to user, user-unmetered, user-traced and user-sampled. Health/Check is
never traced nor counted, so tracing and metrics are compared on GetUser.
"""

from __future__ import annotations

import secrets
import sys
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shop.user.v1 import user_pb2, user_pb2_grpc
from shop_cli.arguments import CliError
from shop_cli.bench.rpc import bare_server, shop_server
from shop_cli.bench.rpc.servers import Identity, ServerPlan, ServerProcess
from shop_cli.bench.rpc.sink import SpanSink, exporting_to
from shop_cli.suite import default_program, find_free_base_port
from shop_grpc import certs, registry
from shop_grpc.config import stop_timeout

USER = "user"
"""The service whose server is measured with a real call, and whose certificate every server
shows."""
NAMESPACE = "bench"
"""The namespace of the run's certificates."""
HEALTH = "Health/Check"
GET_USER = "GetUser"
SAMPLED_RATIO = "0.1"
BARE = "bare"
SHOP = "shop"
TRACED = "user-traced"
SAMPLED = "user-sampled"
UNMETERED = "user-unmetered"
TRACED_SERVERS = (TRACED, SAMPLED)
"""The servers that export spans."""
TITLES = {
    BARE: "bare grpc.aio server",
    SHOP: "shop server, runtime only",
    USER: "user service",
    UNMETERED: "user service, metrics off",
    TRACED: "user service, tracing 100 %",
    SAMPLED: "user service, tracing 10 % parent-based",
}
"""Each server's name -> what the report calls it."""

Call = Callable[[], Awaitable[object]]
"""One RPC, awaited until its answer; raises grpc.aio.AioRpcError when it fails."""


@dataclass(frozen=True)
class Variant:
    """One call to one server, measured on its own."""

    key: str
    server: str
    """The ServerPlan.name of the server called."""
    method: str


VARIANTS = (
    Variant("health-bare", BARE, HEALTH),
    Variant("health-shop", SHOP, HEALTH),
    Variant("health-user", USER, HEALTH),
    Variant("getuser", USER, GET_USER),
    Variant("getuser-unmetered", UNMETERED, GET_USER),
    Variant("getuser-traced", TRACED, GET_USER),
    Variant("getuser-sampled", SAMPLED, GET_USER),
)


@dataclass(frozen=True)
class Comparison:
    """A ratio the report shows: `numerator`'s figures over `denominator`'s."""

    title: str
    numerator: str
    """A Variant.key."""
    denominator: str
    with_rate: bool = False
    """Whether the calls-per-second ratio is shown too (beside server CPU per call)."""


COMPARISONS = (
    Comparison("null RPC, shop server / bare grpc.aio", "health-shop", "health-bare", True),
    Comparison("GetUser / Health/Check, user service", "getuser", "health-user"),
    Comparison("GetUser, metrics on / off", "getuser", "getuser-unmetered"),
    Comparison("GetUser, tracing 100 % / off", "getuser-traced", "getuser"),
    Comparison("GetUser, tracing 10 % parent-based / off", "getuser-sampled", "getuser"),
)


def make_certificates(work_dir: Path) -> Identity:
    """A CA, the user service's certificate and the CLI's, under `work_dir`/certs."""
    out = work_dir / "certs"
    certs.init(out, NAMESPACE, identities=[USER, registry.CLIENT])
    return Identity(client_dir=out / registry.CLIENT, server_name=USER)


def _health_server(name: str, module: ModuleType, port: int, tls_dir: Path) -> ServerPlan:
    """A server of its own module, started as `python -m <module>`."""
    flags = ["--listen", f"127.0.0.1:{port}", "--tls-dir", str(tls_dir)]
    command = [sys.executable, "-m", module.__name__, *flags]
    return ServerPlan(name, command, {}, port, stop_timeout({}))


def _user_server(
    name: str, ports: tuple[int, int, int], work_dir: Path, overrides: dict[str, str]
) -> ServerPlan:
    port, probe_port, metrics_port = ports
    data_dir = work_dir / name
    data_dir.mkdir()
    env = {
        "SHOP_LISTEN_ADDRESS": f"127.0.0.1:{port}",
        "SHOP_PROBE_ADDRESS": f"127.0.0.1:{probe_port}",
        "SHOP_METRICS_ADDRESS": f"127.0.0.1:{metrics_port}",
        "SHOP_TLS_DIR": str(work_dir / "certs" / USER),
        "SHOP_DATA_DIR": str(data_dir),
        # Spans name their process by it, which is how the sink tells the servers apart.
        "SHOP_INSTANCE_ID": name,
        "SHOP_LOG_FORMAT": "json",
        **overrides,
    }
    return ServerPlan(name, default_program(USER), env, port, stop_timeout(env))


def server_plans(work_dir: Path, sink: SpanSink) -> list[ServerPlan]:
    """Every server of the run, on free loopback ports; their files under `work_dir`, which
    must hold the certificates (make_certificates)."""
    if registry.spec(USER) is None:
        raise CliError(f"shop bench rpc measures the {USER} service, which is not installed here")
    base = find_free_base_port(count=14)
    tls_dir = work_dir / "certs" / USER
    sampled = exporting_to(sink, "parentbased_traceidratio", SAMPLED_RATIO)
    return [
        _health_server(BARE, bare_server, base, tls_dir),
        _health_server(SHOP, shop_server, base + 1, tls_dir),
        _user_server(USER, (base + 2, base + 3, base + 4), work_dir, {}),
        _user_server(
            TRACED, (base + 5, base + 6, base + 7), work_dir, exporting_to(sink, "always_on")
        ),
        _user_server(SAMPLED, (base + 8, base + 9, base + 10), work_dir, sampled),
        _user_server(
            UNMETERED, (base + 11, base + 12, base + 13), work_dir, {"SHOP_METRICS_ADDRESS": "off"}
        ),
    ]


def health_check(channel: grpc.aio.Channel, call_timeout: float) -> Call:
    stub = health_pb2_grpc.HealthStub(channel)
    request = health_pb2.HealthCheckRequest()

    async def call() -> object:
        return await stub.Check(request, timeout=call_timeout)

    return call


async def create_user(channel: grpc.aio.Channel, call_timeout: float) -> str:
    """Creates the server's one user; returns its id."""
    stub = user_pb2_grpc.UserServiceStub(channel)
    name = f"bench-{secrets.token_hex(4)}"
    user = await stub.CreateUser(
        user_pb2.CreateUserRequest(
            user=user_pb2.User(username=name, email=f"{name}@example.com"),
            password=secrets.token_urlsafe(16),
            request_id=str(uuid.uuid4()),
        ),
        timeout=call_timeout,
    )
    return str(user.user_id)


def get_user(channel: grpc.aio.Channel, user_id: str, call_timeout: float) -> Call:
    stub = user_pb2_grpc.UserServiceStub(channel)
    request = user_pb2.GetUserRequest(user_id=user_id)

    async def call() -> object:
        return await stub.GetUser(request, timeout=call_timeout)

    return call


async def calls(started: Sequence[ServerProcess], call_timeout: float) -> dict[str, Call]:
    """Variant key -> its call, each with a deadline of `call_timeout` seconds; first creates the
    one user of every server that GetUser is called on."""
    by_name = {server.plan.name: server for server in started}
    readers = {v.server for v in VARIANTS if v.method == GET_USER}
    user_ids = {name: await create_user(by_name[name].channel, call_timeout) for name in readers}
    return {
        v.key: (
            get_user(by_name[v.server].channel, user_ids[v.server], call_timeout)
            if v.method == GET_USER
            else health_check(by_name[v.server].channel, call_timeout)
        )
        for v in VARIANTS
    }
