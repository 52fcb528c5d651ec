"""mTLS from one identity's files (ca.crt, tls.crt, tls.key), picked up again when they change.

Servers require a client certificate signed by the suite's CA and read the files
again whenever they change (a mounted Secret is updated in place), through
``grpc.dynamic_ssl_server_credentials``: its fetcher runs on a gRPC core thread
for each new connection, so it only takes a lock and stats three files.

A channel cannot change the certificate it presents, so `ReloadingChannel` builds
a new channel when the files change and retires the old one: calls in flight on
it may finish for `RETIRE_GRACE_SECONDS`. Stubs built on a `ReloadingChannel`
keep working across the swap, so code holding them need not know.

Clients check the server's certificate for the name of the service they mean to
reach (``grpc.ssl_target_name_override``), not the address they dial: locally
that is a loopback address per replica, in a cluster a headless Service name
resolving to pod IPs. Every certificate of a service carries its bare name, so
the check holds wherever the replicas are, and tells inventory from payment.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import structlog
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from shop_grpc.certs import CA_FILE, CERT_FILE, KEY_FILE, parse_spiffe_id
from shop_grpc.config import ConfigError, TlsSettings

log = structlog.get_logger("shop_grpc.credentials")

RETIRE_GRACE_SECONDS = 30.0
"""How long calls in flight on a channel replaced after a rotation may still run."""
CLIENT_CHECK_SECONDS = 1.0
"""How often a channel looks at its files: at most once a second, on a call."""


class CertificateError(ConfigError):
    """The identity's files are missing or unusable; names the directory."""


@dataclass(frozen=True)
class Material:
    """One consistent reading of an identity's files."""

    ca: bytes
    cert: bytes
    key: bytes
    spiffe_id: str
    not_after: str

    @property
    def namespace(self) -> str:
        parsed = parse_spiffe_id(self.spiffe_id)
        return parsed[0] if parsed else ""


def read_material(directory: Path) -> Material:
    """Reads and checks the three files; raises CertificateError if they do not fit."""
    try:
        ca, cert_pem, key_pem = (
            (directory / name).read_bytes() for name in (CA_FILE, CERT_FILE, KEY_FILE)
        )
        cert = x509.load_pem_x509_certificate(cert_pem)
        x509.load_pem_x509_certificates(ca)
        key = serialization.load_pem_private_key(key_pem, None)
    except (OSError, ValueError) as error:
        raise CertificateError(
            f"SHOP_TLS_DIR={directory}: {error}; `shop certs init` makes certificates, "
            "SHOP_INSECURE=1 runs in plaintext"
        ) from error
    raw = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(*raw) != cert.public_key().public_bytes(*raw):
        raise CertificateError(f"{directory}: {KEY_FILE} is not the key of {CERT_FILE}")
    return Material(ca, cert_pem, key_pem, _spiffe_id(cert), cert.not_valid_after_utc.isoformat())


def _spiffe_id(cert: x509.Certificate) -> str:
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ""
    uris = sans.get_values_for_type(x509.UniformResourceIdentifier)
    return next((uri for uri in uris if parse_spiffe_id(uri)), "")


Signature = tuple[tuple[int, int, int], ...]


class IdentityFiles:
    """An identity's directory, read again when any of its files changes.

    Thread-safe: the server's fetcher calls `refresh` from gRPC core threads.
    Files that change one at a time may briefly not fit together (a new
    certificate with the old key); the last good reading is kept until they do.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._signature = self._stat()
        self.material = read_material(directory)
        self._rejected: Signature | None = None

    def _stat(self) -> Signature:
        stats = []
        for name in (CA_FILE, CERT_FILE, KEY_FILE):
            try:
                # stat follows symlinks: a Secret's ..data swap shows as a new inode.
                st = os.stat(self.directory / name)
            except OSError:
                stats.append((0, 0, 0))
            else:
                stats.append((st.st_ino, st.st_mtime_ns, st.st_size))
        return tuple(stats)

    def refresh(self) -> bool:
        """Reads the files again if they changed; True if `material` is new."""
        with self._lock:
            signature = self._stat()
            if signature == self._signature or signature == self._rejected:
                return False
            try:
                material = read_material(self.directory)
            except CertificateError as error:
                self._rejected = signature
                log.warning(
                    "certificate files not usable yet; keeping the last good ones", error=str(error)
                )
                return False
            self._signature, self.material, self._rejected = signature, material, None
        log.info(
            "certificate reloaded",
            directory=str(self.directory),
            identity=material.spiffe_id,
            not_after=material.not_after,
        )
        return True


def _identity_files(settings: TlsSettings) -> IdentityFiles:
    assert settings.directory is not None
    return IdentityFiles(settings.directory)


# -- servers -----------------------------------------------------------------


class ServerTls:
    """Credentials of a server that requires and checks client certificates."""

    def __init__(self, files: IdentityFiles) -> None:
        self.files = files

    def _configuration(self) -> grpc.ServerCertificateConfiguration:
        material = self.files.material
        return grpc.ssl_server_certificate_configuration(
            [(material.key, material.cert)], root_certificates=material.ca
        )

    def _fetch(self) -> grpc.ServerCertificateConfiguration | None:
        # Runs on a gRPC core thread for every new connection: no event loop work here.
        try:
            return self._configuration() if self.files.refresh() else None
        except Exception:  # a raising fetcher would fail the handshake; keep the old config
            log.exception("certificate reload failed")
            return None

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.dynamic_ssl_server_credentials(
            self._configuration(), self._fetch, require_client_authentication=True
        )


def server_tls(settings: TlsSettings) -> ServerTls | None:
    """The server's mTLS credentials, or None when plaintext was asked for."""
    if settings.directory is None:
        return None
    return ServerTls(_identity_files(settings))


def add_port(server: grpc.aio.Server, address: str, tls: ServerTls | None) -> int:
    """Binds `address` with mTLS, or in plaintext with a loud warning; returns the port."""
    if tls is None:
        log.warning(
            "PLAINTEXT: this server accepts unauthenticated, unencrypted calls on every "
            "method (SHOP_INSECURE=1); use only for debugging",
            address=address,
        )
        return int(server.add_insecure_port(address))
    port = int(server.add_secure_port(address, tls.credentials()))
    material = tls.files.material
    log.info("mTLS on", identity=material.spiffe_id, not_after=material.not_after)
    return port


# -- channels ----------------------------------------------------------------


def channel_credentials(material: Material) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        root_certificates=material.ca, private_key=material.key, certificate_chain=material.cert
    )


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


def secure_channel(
    target: str,
    settings: TlsSettings,
    options: Sequence[tuple[str, Any]],
    interceptors: Sequence[grpc.aio.ClientInterceptor],
    server_name: str = "",
) -> grpc.aio.Channel | ReloadingChannel:
    """A channel presenting the identity in `settings`; plaintext if that was asked for.

    `server_name`: the name the server's certificate must carry (the service's
    name); empty checks the host that `target` names.
    """
    if settings.directory is None:
        return grpc.aio.insecure_channel(target, options=options, interceptors=interceptors)
    options = list(options)
    if server_name:
        options.append(("grpc.ssl_target_name_override", server_name))
    return ReloadingChannel(target, _identity_files(settings), options, interceptors)
