"""`shop probe` as a drop-in grpc_health_probe: every flag, every exit code, real servers.

The command runs its own event loop, so each call runs in a worker thread while the
servers under test serve from the test's loop.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from shop_cli.__main__ import run
from shop_cli.commands.probe import FLAGS
from shop_cli.goflags import Duration
from shop_grpc.testing import MtlsServing, serving_mtls

ORDERS = "shop.order.v1.OrderService"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str


def _probe_caller(capture: pytest.CaptureFixture[str]) -> Callable[..., Awaitable[Outcome]]:
    async def call(*arguments: str) -> Outcome:
        code = await asyncio.to_thread(run, ["probe", *arguments])
        captured = capture.readouterr()
        return Outcome(code, captured.out, captured.err)

    return call


@pytest.fixture
def shop_probe(capsys):
    return _probe_caller(capsys)


@pytest.fixture
def shop_probe_fd(capfd):
    """shop_probe, also seeing what gRPC's C core writes to the process's stderr."""
    return _probe_caller(capfd)


def client_files(shop: MtlsServing) -> list[str]:
    folder = shop.certs / "client"
    return [f"-tls-client-cert={folder / 'tls.crt'}", f"-tls-client-key={folder / 'tls.key'}"]


def ca_file(shop: MtlsServing) -> str:
    return f"-tls-ca-cert={shop.certs / 'client' / 'ca.crt'}"


@pytest.fixture
async def shop(tmp_path: Path) -> AsyncIterator[MtlsServing]:
    """A real shop server: mTLS on `address`, plaintext health on `probe_address`."""
    async with serving_mtls(tmp_path, "order") as serving:
        await serving.server.health.set(ORDERS, SERVING)
        yield serving


class Recorder(grpc.aio.ServerInterceptor):
    """Keeps the metadata of every call the server receives."""

    def __init__(self) -> None:
        self.metadata: list[dict[str, Any]] = []

    async def intercept_service(self, continuation, details):
        self.metadata.append(dict(details.invocation_metadata))
        return await continuation(details)


class SlowHealth(health.aio.HealthServicer):
    async def Check(self, request, context):
        await asyncio.sleep(2)
        return await super().Check(request, context)


@asynccontextmanager
async def plain_server(
    servicer: health.aio.HealthServicer | None = None,
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
    options: Sequence[tuple[str, Any]] = (),
) -> AsyncIterator[str]:
    """A plaintext grpc.aio server hosting `servicer` (or nothing); yields its address."""
    server = grpc.aio.server(interceptors=list(interceptors), options=list(options))
    if servicer is not None:
        await servicer.set("", SERVING)
        health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(0)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- exit 0: SERVING ----------------------------------------------------------------------


async def test_every_spelling_of_the_address_reaches_a_serving_server(shop, shop_probe):
    address = shop.probe_address
    port = address.rpartition(":")[2]
    spellings = [
        [f"-addr={address}"],
        ["-addr", address],
        [f"--addr={address}"],
        [address],  # shop probe HOST:PORT
        [f"-addr=:{port}"],  # Go's "this machine", as in pod specs
    ]
    for arguments in spellings:
        assert await shop_probe(*arguments) == Outcome(0, "status: SERVING\n", ""), arguments


async def test_service_names_the_service_to_check(shop, shop_probe):
    ok = await shop_probe(f"-addr={shop.probe_address}", "-service", ORDERS)
    assert ok == Outcome(0, "status: SERVING\n", "")


async def test_mtls_flags_check_the_mtls_port(shop, shop_probe):
    tls = ["-tls", ca_file(shop), *client_files(shop), "-tls-server-name=order"]
    ok = await shop_probe(f"-addr={shop.address}", *tls, "-service", ORDERS)
    assert (ok.code, ok.out) == (0, "status: SERVING\n")


async def test_verbose_logs_the_options_and_the_timings_on_stderr(shop, shop_probe):
    tls = ["-tls", ca_file(shop), *client_files(shop), "-tls-server-name=order"]
    ok = await shop_probe("-v", f"-addr={shop.address}", *tls)
    assert ok.code == 0
    lines = ok.err.splitlines()
    assert lines[:4] == [
        "parsed options:",
        f"> addr={shop.address} conn_timeout=1s rpc_timeout=1s",
        "> tls=true",
        "  > no-verify=false ",
    ]
    assert "  > server-name=order" in lines
    assert "establishing connection" in lines
    assert lines[-1].startswith("time elapsed: connect=")
    assert ok.out == "status: SERVING\n"


# -- -tls-no-verify ---------------------------------------------------------------------


async def test_tls_no_verify_accepts_a_certificate_nothing_vouches_for(shop, shop_probe):
    address = f"-addr={shop.address}"
    # The system's roots do not know the suite's CA: verified, the handshake fails.
    verified = await shop_probe(address, "-tls", *client_files(shop), "-connect-timeout=300ms")
    assert verified.code == 2
    assert verified.err == f'timeout: failed to connect service "{shop.address}" within 300ms\n'
    unverified = await shop_probe(address, "-tls", "-tls-no-verify", *client_files(shop))
    assert unverified == Outcome(0, "status: SERVING\n", "")


async def test_a_certificate_for_another_name_fails_unless_unverified(shop, shop_probe):
    tls = ["-tls", *client_files(shop)]
    wrong = await shop_probe(
        f"-addr={shop.address}", *tls, ca_file(shop), "-tls-server-name=payment",
        "-connect-timeout=300ms",
    )  # fmt: skip
    assert wrong.code == 2
    ok = await shop_probe(f"-addr={shop.address}", *tls, "-tls-no-verify")
    assert ok.code == 0


# -- exit 2: no connection --------------------------------------------------------------


async def test_nobody_listening_is_a_connection_failure_exit_2(shop_probe):
    address = f"127.0.0.1:{closed_port()}"
    failed = await shop_probe(f"-addr={address}", "-connect-timeout", "200ms")
    assert failed == Outcome(
        2, "", f'timeout: failed to connect service "{address}" within 200ms\n'
    )


async def test_plaintext_to_the_mtls_port_is_a_connection_failure(shop, shop_probe):
    failed = await shop_probe(shop.address, "-connect-timeout=300ms")
    assert failed.code == 2


async def test_no_verify_to_nobody_says_why_it_could_not_connect(shop_probe):
    address = f"127.0.0.1:{closed_port()}"
    failed = await shop_probe(f"-addr={address}", "-tls", "-tls-no-verify")
    assert failed.code == 2
    assert failed.err.startswith(f'error: failed to connect service at "{address}": ')


# -- exit 3: the RPC failed ---------------------------------------------------------------


async def test_an_unknown_service_is_an_rpc_failure_exit_3(shop, shop_probe):
    failed = await shop_probe(f"-addr={shop.probe_address}", "-service=no.such.Service")
    assert failed.code == 3
    assert failed.err.startswith("error: health rpc failed: rpc error: code = NotFound desc = ")


async def test_a_slow_check_is_an_rpc_timeout_exit_3(shop_probe):
    async with plain_server(SlowHealth()) as address:
        failed = await shop_probe(f"-addr={address}", "-rpc-timeout=100ms")
    assert failed == Outcome(3, "", "timeout: health rpc did not complete within 100ms\n")


async def test_timeouts_shorter_than_a_millisecond_still_hold(shop_probe):
    # No check or connection takes under a microsecond, so Go's deadlines always pass first.
    async with plain_server(health.aio.HealthServicer()) as address:
        assert await shop_probe(address) == Outcome(0, "status: SERVING\n", "")
        for timeout in ("1ns", "1\u00b5s", "1us", "999ns"):
            shown = str(Duration.parse(timeout))
            rpc = await shop_probe(address, f"-rpc-timeout={timeout}")
            assert rpc == Outcome(3, "", f"timeout: health rpc did not complete within {shown}\n")
            connect = await shop_probe(address, f"-connect-timeout={timeout}")
            assert connect == Outcome(
                2, "", f'timeout: failed to connect service "{address}" within {shown}\n'
            )


async def test_a_server_without_health_is_an_rpc_failure_exit_3(shop_probe):
    async with plain_server() as address:
        failed = await shop_probe(f"-addr={address}")
    assert failed == Outcome(
        3,
        "",
        "error: this server does not implement the grpc health protocol (grpc.health.v1.Health)\n",
    )


async def test_gzip_compresses_the_check(shop_probe):
    # A server that refuses gzip-compressed messages tells whether the check was compressed.
    identity_only = [("grpc.compression_enabled_algorithms_bitset", 1)]
    async with plain_server(health.aio.HealthServicer(), options=identity_only) as address:
        plain = await shop_probe(f"-addr={address}")
        gzipped = await shop_probe(f"-addr={address}", "-gzip")
    assert plain.code == 0
    assert gzipped.code == 3


# -- exit 4: not SERVING ------------------------------------------------------------------


async def test_not_serving_exits_4_on_both_ports(shop, shop_probe):
    await shop.server.set_serving(False)  # draining
    tls = ["-tls", ca_file(shop), *client_files(shop), "-tls-server-name=order"]
    for arguments in ([shop.probe_address], [f"-addr={shop.address}", *tls]):
        drained = await shop_probe(*arguments)
        assert drained == Outcome(4, "", 'service unhealthy (responded with "NOT_SERVING")\n')


# -- what the server sees -----------------------------------------------------------------


async def test_user_agent_and_rpc_headers_reach_the_server(shop_probe):
    recorder = Recorder()
    async with plain_server(health.aio.HealthServicer(), [recorder]) as address:
        assert (await shop_probe(address)).code == 0
        ok = await shop_probe(
            f"-addr={address}",
            "-user-agent=kube-probe/1.31",
            "-rpc-header",
            "Authorization: Bearer t0ken",
            "-rpc-header=x-trace-bin:\x01\x02",
        )
    assert ok.code == 0
    default, given = recorder.metadata
    assert default["user-agent"].startswith("grpc_health_probe ")
    assert given["user-agent"].startswith("kube-probe/1.31 ")
    assert given["authorization"] == "Bearer t0ken"
    assert given["x-trace-bin"] == b"\x01\x02"


# -- exit 1: bad arguments ----------------------------------------------------------------


NEEDS = "error: specified {} without specifying {}"
UNUSED = "error: cannot specify {} with -tls-no-verify ({} would not be used)"
TIMEOUT = "error: {} must be greater than zero (specified: {})"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ([], "error: -addr not specified"),
        (["-service=x"], "error: -addr not specified"),
        (["-addr=a:1", "-connect-timeout=0s"], TIMEOUT.format("-connect-timeout", "0s")),
        (["-addr=a:1", "-rpc-timeout", "-1s"], TIMEOUT.format("-rpc-timeout", "-1s")),
        (["-addr=a:1", "-alts"], "error: -alts is not supported by shop probe"),
        (["-addr=a:1", "-spiffe"], "error: -spiffe is not supported by shop probe"),
        (["-addr=a:1", "-tls-no-verify"], NEEDS.format("-tls-no-verify", "-tls")),
        (["-addr=a:1", "-tls=false", "-tls-ca-cert=ca"], NEEDS.format("-tls-ca-cert", "-tls")),
        (["-addr=a:1", "-tls-client-cert=c"], NEEDS.format("-tls-client-cert", "-tls")),
        (["-addr=a:1", "-tls-server-name=n"], NEEDS.format("-tls-server-name", "-tls")),
        (
            ["-addr=a:1", "-tls", "-tls-client-cert=c"],
            NEEDS.format("-tls-client-cert", "-tls-client-key"),
        ),
        (
            ["-addr=a:1", "-tls", "-tls-client-key=k"],
            NEEDS.format("-tls-client-key", "-tls-client-cert"),
        ),
        (
            ["-addr=a:1", "-tls", "-tls-no-verify", "-tls-ca-cert=c"],
            UNUSED.format("-tls-ca-cert", "CA cert"),
        ),
        (
            ["-addr=a:1", "-tls", "-tls-no-verify", "-tls-server-name=n"],
            UNUSED.format("-tls-server-name", "server name"),
        ),
        (["a:1", "b:2"], "error: one address only, got a:1 b:2"),
        (["-addr=a:1", "b:2"], "error: two addresses: -addr=a:1 and b:2"),
    ],
)
async def test_bad_arguments_exit_1_with_grpc_health_probes_message(arguments, message, shop_probe):
    assert await shop_probe(*arguments) == Outcome(1, "", message + "\n")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["-bogus"], "flag provided but not defined: -bogus"),
        (["-addr"], "flag needs an argument: -addr"),
        (["-addr=a:1", "-tls=maybe"], 'invalid boolean value "maybe" for -tls: parse error'),
        (
            ["-addr=a:1", "-rpc-timeout=soon"],
            'invalid value "soon" for flag -rpc-timeout: parse error',
        ),
        (
            ["-addr=a:1", "-rpc-timeout=9999999999h"],  # beyond an int64 of nanoseconds
            'invalid value "9999999999h" for flag -rpc-timeout: parse error',
        ),
        (
            ["-addr=a:1", "-connect-timeout=2562047h47m16.854775808s"],
            'invalid value "2562047h47m16.854775808s" for flag -connect-timeout: parse error',
        ),
        (
            ["-addr=a:1", "-rpc-header=nocolon"],
            'invalid value "nocolon" for flag -rpc-header: '
            "invalid RPC header, expected 'key: value', got \"nocolon\"",
        ),
    ],
)
async def test_bad_flags_exit_1_with_gos_message_and_the_usage(arguments, message, shop_probe):
    refused = await shop_probe(*arguments)
    assert (refused.code, refused.out) == (1, "")
    first, *usage = refused.err.splitlines()
    assert first == message
    assert usage[0] == "Usage of shop probe:"


async def test_unreadable_tls_files_exit_1(tmp_path, shop_probe):
    missing = tmp_path / "missing.crt"
    pair = await shop_probe(
        "-addr=a:1", "-tls", f"-tls-client-cert={missing}", f"-tls-client-key={missing}"
    )
    assert pair.code == 1
    assert pair.err.startswith(
        "failed to initialize tls credentials. error=failed to load tls client cert/key pair."
    )
    not_a_ca = tmp_path / "not-a-ca.crt"
    not_a_ca.write_text("hello\n")
    ca = await shop_probe("-addr=a:1", "-tls", f"-tls-ca-cert={not_a_ca}")
    assert ca == Outcome(
        1,
        "",
        "failed to initialize tls credentials. error=no root CA certs parsed from file "
        f"{not_a_ca}\n",
    )


@pytest.mark.parametrize("spelling", ["-h", "-help", "--help"])
async def test_help_lists_every_flag_on_stderr_and_exits_1(spelling, shop_probe):
    # Go's flag package writes the usage to stderr; grpc_health_probe exits 1 on -h.
    shown = await shop_probe("-addr=a:1", spelling)
    assert (shown.code, shown.out) == (1, "")
    first, *rest = shown.err.splitlines()
    assert first == "Usage of shop probe:"
    listed = {line.split()[0] for line in rest if line.startswith("  -")}
    assert listed == {f"-{flag.name}" for flag in FLAGS}


HEADER = 'invalid value "{}" for flag -rpc-header: invalid RPC header, '


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (": v", HEADER.format(": v") + "the name is empty"),
        (" : v", HEADER.format(" : v") + "the name is empty"),
        (
            "bad key: v",
            HEADER.format("bad key: v") + 'name "bad key" has characters not in [0-9a-z-_.]',
        ),
        ("x/y: v", HEADER.format("x/y: v") + 'name "x/y" has characters not in [0-9a-z-_.]'),
        (
            "caf\u00e9: v",
            HEADER.format("caf\u00e9: v") + 'name "caf\u00e9" has characters not in [0-9a-z-_.]',
        ),
        (
            "x-note: caf\u00e9",
            HEADER.format("x-note: caf\u00e9")
            + 'the value of "x-note" has characters other than printable ASCII '
            "(a name ending in -bin takes any bytes)",
        ),
        (
            "x-note: a\tb",
            HEADER.format("x-note: a\tb")
            + 'the value of "x-note" has characters other than printable ASCII '
            "(a name ending in -bin takes any bytes)",
        ),
    ],
)
async def test_headers_grpc_would_refuse_exit_1_before_any_call(header, message, shop_probe_fd):
    recorder = Recorder()
    async with plain_server(health.aio.HealthServicer(), [recorder]) as address:
        refused = await shop_probe_fd(address, "-rpc-header", header)
    assert (refused.code, refused.out) == (1, "")
    # Only the message and the usage: gRPC's C core never saw the header, so logged nothing.
    first, *usage = refused.err.splitlines()
    assert first == message
    assert usage[0] == "Usage of shop probe:"
    assert all(line.startswith("  ") for line in usage[1:])
    assert recorder.metadata == []
