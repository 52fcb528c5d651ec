"""mTLS from one identity's files (ca.crt, tls.crt, tls.key), picked up again when they change.

`read_material` reads and checks one identity's files; `IdentityFiles` reads them again when
they change (a mounted Secret is updated in place) and keeps the last good reading.

Servers require a client certificate signed by the suite's CA and present the current
certificate through ``grpc.dynamic_ssl_server_credentials``: its fetcher runs on a gRPC core
thread for each new connection, so it only takes a lock and stats three files.

Clients build their credentials from the same material (`channel_credentials`); a channel that
follows a rotation is `shop_grpc.reloading_channel.ReloadingChannel`.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

import grpc
import structlog
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from shop_grpc.certs import CA_FILE, CERT_FILE, KEY_FILE, parse_spiffe_id
from shop_grpc.config import ConfigError, TlsSettings

log = structlog.get_logger("shop_grpc.credentials")


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


def identity_files(settings: TlsSettings) -> IdentityFiles:
    """The files of the identity `settings` names; raises CertificateError if they are unusable.

    Only for TLS settings: `settings.directory` must not be None (plaintext).
    """
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
    return ServerTls(identity_files(settings))


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


# -- clients -----------------------------------------------------------------


def channel_credentials(material: Material) -> grpc.ChannelCredentials:
    """A client's credentials: `material`'s certificate and key, trusting its CA only."""
    return grpc.ssl_channel_credentials(
        root_certificates=material.ca, private_key=material.key, certificate_chain=material.cert
    )
