"""One grpc.health.v1 Check as grpc_health_probe makes it, with its messages and exit codes.

The connection is a bare channel, as grpc_health_probe's: no retries, no client-side
health checking, no load balancing; the connect timeout covers getting it ready (and the
TLS handshake), the RPC timeout the Check. grpc_health_probe's timeouts are Go context
deadlines, exact to the nanosecond; gRPC for Python keeps deadlines only to about the
millisecond and hands over an answer that came after a shorter one, so the probe keeps
both deadlines itself: whatever comes after one has passed (a connection, an answer, an
error) is that timeout.

``-tls-no-verify``: grpcio has no way to skip checking the server's certificate, so the
probe first makes a TLS handshake of its own that checks nothing, takes the certificate
the server shows, and trusts exactly that certificate, for the name it carries, for the
check's one connection. The effect is grpc-go's InsecureSkipVerify for a server showing
one certificate; a server that shows another on the next connection (rotated in between)
fails the check as a connection failure (exit 2).
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from urllib.parse import urlsplit

import grpc
from cryptography import x509
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shop_cli.goflags import SECOND, Duration


class ProbeExit(IntEnum):
    """grpc_health_probe's exit codes."""

    SERVING = 0
    INVALID_ARGUMENTS = 1
    CONNECTION_FAILURE = 2
    RPC_FAILURE = 3
    UNHEALTHY = 4


@dataclass(frozen=True)
class ProbeResult:
    exit: ProbeExit
    message: str


class ProbeFailure(Exception):
    def __init__(self, exit: ProbeExit, message: str) -> None:
        super().__init__(message)
        self.result = ProbeResult(exit, message)


@dataclass(frozen=True)
class ProbeTls:
    """grpc_health_probe's -tls-* flags; without a CA file the system's roots are trusted."""

    ca_cert: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    server_name: str = ""
    no_verify: bool = False


Metadata = tuple[tuple[str, str | bytes], ...]
ONE_SECOND = Duration(SECOND)
"""grpc_health_probe's default for both timeouts."""


@dataclass(frozen=True)
class ProbeOptions:
    addr: str
    service: str = ""
    user_agent: str = "grpc_health_probe"
    connect_timeout: Duration = ONE_SECOND
    rpc_timeout: Duration = ONE_SECOND
    tls: ProbeTls | None = None
    rpc_headers: Metadata = ()
    gzip: bool = False


async def probe(options: ProbeOptions, log: Callable[[str], None] | None = None) -> ProbeResult:
    """Connects, checks, and says what happened; `log` gets the -v lines."""
    log = log or (lambda _: None)
    try:
        key_pair, roots = _read_files(options.tls) if options.tls else (None, None)
        log("establishing connection")
        started = time.monotonic_ns()
        channel = await _connect(options, key_pair, roots)
        connected = Duration(time.monotonic_ns() - started)
        log(f"connection established (took {connected})")
        try:
            started = time.monotonic_ns()
            result = await _check(channel, options)
        finally:
            await channel.close()
        # grpc_health_probe times only a check that found the service SERVING.
        log(f"time elapsed: connect={connected} rpc={Duration(time.monotonic_ns() - started)}")
        return result
    except ProbeFailure as failure:
        return failure.result


class _Deadline:
    """A Go context deadline: `timeout` from now, passed once that instant is behind us."""

    def __init__(self, timeout: Duration) -> None:
        self._at = time.monotonic_ns() + timeout.nanoseconds

    def passed(self) -> bool:
        return time.monotonic_ns() > self._at


# -- credentials -----------------------------------------------------------------------

KeyPair = tuple[bytes, bytes]


def _read_files(tls: ProbeTls) -> tuple[KeyPair | None, bytes | None]:
    """(key, certificate chain) and CA certificates, each checked as grpc-go checks them."""
    try:
        return _key_pair(tls), None if tls.no_verify else _roots(tls.ca_cert)
    except ValueError as error:
        raise ProbeFailure(
            ProbeExit.INVALID_ARGUMENTS, f"failed to initialize tls credentials. error={error}"
        ) from None


def _key_pair(tls: ProbeTls) -> KeyPair | None:
    if tls.client_cert is None or tls.client_key is None:
        return None
    try:
        # The stdlib's loader refuses files that do not parse and keys that do not fit.
        ssl.create_default_context().load_cert_chain(tls.client_cert, tls.client_key)
        return tls.client_key.read_bytes(), tls.client_cert.read_bytes()
    except (OSError, ssl.SSLError) as error:
        raise ValueError(f"failed to load tls client cert/key pair. error={error}") from None


def _roots(ca_cert: Path | None) -> bytes | None:
    if ca_cert is None:
        return None
    try:
        pem = ca_cert.read_bytes()
    except OSError as error:
        raise ValueError(
            f"failed to load root CA certificates from file ({ca_cert}) error={error}"
        ) from None
    try:
        ssl.create_default_context(cadata=pem.decode("ascii", "replace"))
    except (ssl.SSLError, ValueError):
        raise ValueError(f"no root CA certs parsed from file {ca_cert}") from None
    return pem


# -- connection ------------------------------------------------------------------------


def dial_target(addr: str) -> str:
    """`addr` as gRPC dials it: Go dials ``:8081`` on this machine, so it is localhost here."""
    return f"localhost{addr}" if addr.startswith(":") else addr


async def _connect(
    options: ProbeOptions, key_pair: KeyPair | None, roots: bytes | None
) -> grpc.aio.Channel:
    target = dial_target(options.addr)
    channel_options = [("grpc.primary_user_agent", options.user_agent)]
    compression = grpc.Compression.Gzip if options.gzip else None
    timed_out = ProbeFailure(
        ProbeExit.CONNECTION_FAILURE,
        f"timeout: failed to connect service {_go_quote(options.addr)} within "
        f"{options.connect_timeout}",
    )
    deadline = _Deadline(options.connect_timeout)
    try:
        async with asyncio.timeout(options.connect_timeout.seconds):
            if options.tls is None:
                channel = grpc.aio.insecure_channel(
                    target, options=channel_options, compression=compression
                )
            else:
                server_name = options.tls.server_name
                if options.tls.no_verify:
                    roots, server_name = await _shown_certificate(target, options.tls)
                if server_name:
                    channel_options.append(("grpc.ssl_target_name_override", server_name))
                key, chain = key_pair or (None, None)
                credentials = grpc.ssl_channel_credentials(roots, key, chain)
                channel = grpc.aio.secure_channel(
                    target, credentials, options=channel_options, compression=compression
                )
            try:
                await channel.channel_ready()
            except BaseException:
                await channel.close()
                raise
    except TimeoutError:
        raise timed_out from None
    except ProbeFailure as failure:
        if failure.result.exit == ProbeExit.CONNECTION_FAILURE and deadline.passed():
            raise timed_out from None
        raise
    if deadline.passed():
        await channel.close()
        raise timed_out
    return channel


async def _shown_certificate(target: str, tls: ProbeTls) -> tuple[bytes, str]:
    """The certificate the server shows (PEM) and a name it carries, checking nothing."""
    host, port = _host_and_port(target)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])  # gRPC servers refuse a handshake without it
    if tls.client_cert and tls.client_key:
        context.load_cert_chain(tls.client_cert, tls.client_key)
    try:
        _, writer = await asyncio.open_connection(host, port, ssl=context, server_hostname=host)
    except (OSError, ssl.SSLError) as error:
        raise ProbeFailure(
            ProbeExit.CONNECTION_FAILURE,
            f"error: failed to connect service at {_go_quote(target)}: {error}",
        ) from None
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        writer.close()
    certificate = x509.load_der_x509_certificate(der)
    name = _name_in(certificate)
    if not name:
        raise ProbeFailure(
            ProbeExit.CONNECTION_FAILURE,
            f"error: failed to connect service at {_go_quote(target)}: the server's "
            "certificate names no host (DNS or IP SAN, or CN) to trust it for",
        )
    return ssl.DER_cert_to_PEM_cert(der).encode(), name


def _host_and_port(target: str) -> tuple[str, int]:
    authority = target.rsplit("/", 1)[-1]  # dns:///host:port -> host:port
    parts = urlsplit(f"//{authority}")
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or port is None:
        raise ProbeFailure(
            ProbeExit.INVALID_ARGUMENTS, f"error: -tls-no-verify needs HOST:PORT, not {target}"
        )
    return parts.hostname, port


def _name_in(certificate: x509.Certificate) -> str:
    try:
        sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        sans = None
    if sans is not None:
        names = sans.get_values_for_type(x509.DNSName)
        names += [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)]
        if names:
            return str(names[0])
    common = certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(common[0].value) if common else ""


# -- the check -------------------------------------------------------------------------


async def _check(channel: grpc.aio.Channel, options: ProbeOptions) -> ProbeResult:
    """The check's result when SERVING; raises ProbeFailure for any other outcome."""
    stub = health_pb2_grpc.HealthStub(channel)
    request = health_pb2.HealthCheckRequest(service=options.service)
    timed_out = ProbeFailure(
        ProbeExit.RPC_FAILURE, f"timeout: health rpc did not complete within {options.rpc_timeout}"
    )
    deadline = _Deadline(options.rpc_timeout)
    try:
        async with asyncio.timeout(options.rpc_timeout.seconds):
            reply = await stub.Check(
                request, timeout=options.rpc_timeout.seconds, metadata=options.rpc_headers or None
            )
    except TimeoutError:
        raise timed_out from None
    except grpc.aio.AioRpcError as error:
        if deadline.passed():
            raise timed_out from None
        raise ProbeFailure(
            ProbeExit.RPC_FAILURE, _rpc_failure(error, options.rpc_timeout)
        ) from None
    if deadline.passed():
        raise timed_out
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    if reply.status != health_pb2.HealthCheckResponse.SERVING:
        raise ProbeFailure(
            ProbeExit.UNHEALTHY, f"service unhealthy (responded with {_go_quote(status)})"
        )
    return ProbeResult(ProbeExit.SERVING, f"status: {status}")


def _rpc_failure(error: grpc.aio.AioRpcError, rpc_timeout: Duration) -> str:
    code = error.code()
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return (
            "error: this server does not implement the grpc health protocol (grpc.health.v1.Health)"
        )
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return f"timeout: health rpc did not complete within {rpc_timeout}"
    return f"error: health rpc failed: rpc error: code = {go_code(code)} desc = {error.details()}"


def go_code(code: grpc.StatusCode) -> str:
    """The status code's name as grpc-go spells it (``NotFound``, ``Canceled``)."""
    if code == grpc.StatusCode.OK:
        return "OK"
    if code == grpc.StatusCode.CANCELLED:
        return "Canceled"
    return "".join(part.capitalize() for part in code.name.split("_"))


def _go_quote(text: str) -> str:
    """Go's %q for the printable text of an address."""
    return json.dumps(text, ensure_ascii=False)
