"""Throwaway certificates: a CA and an identity per name, laid out as ``shop certs init``
lays them out (``<directory>/ca/``, ``<directory>/<identity>/{ca.crt,tls.crt,tls.key}``)."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from shop_grpc import certs
from shop_grpc.config import TlsSettings


@dataclass(frozen=True)
class Certificates:
    """The suite's certificates in one directory, and the CA that signed them."""

    directory: Path
    authority: certs.Authority
    namespace: str
    """The namespace the identities' SPIFFE ids name (``spiffe://shop/ns/<namespace>/sa/...``)."""

    @classmethod
    def at(cls, directory: Path, namespace: str) -> Certificates:
        """Those already under `directory` (its CA's key included), made for `namespace`.

        Raises OSError when the CA's files are missing, ValueError when its key is not EC.
        """
        return cls(directory, certs.load_authority(directory), namespace)

    def identity(self, name: str) -> Path:
        """The directory of `name`'s ca.crt, tls.crt and tls.key."""
        return self.directory / name

    def tls(self, name: str) -> TlsSettings:
        """`name`'s files as the settings a server or a channel takes."""
        return TlsSettings(self.identity(name))

    def reissue(self, name: str, *, namespace: str | None = None) -> certs.Issued:
        """A new certificate and key for `name` from the same CA, written over its files as a
        rotated Secret is; `namespace` names another namespace in it (one the policy refuses)."""
        issued = certs.issue(self.authority, name, namespace or self.namespace)
        certs.write_identity(self.identity(name), self.authority.cert_pem, issued)
        return issued


def issue_certificates(
    directory: Path, namespace: str = "test", identities: Iterable[str] | None = None
) -> Certificates:
    """A new CA and a certificate for each of `identities` under `directory`: every installed
    service's and the CLI's (``client``) when None, as ``shop certs init`` makes them."""
    authority = certs.init(directory, namespace, identities=identities)
    return Certificates(directory, authority, namespace)


def served_certificate(address: str, identity: Path) -> x509.Certificate:
    """The certificate a brand-new TLS connection to `address` (``host:port``) is shown, as
    the client whose files are in `identity` (ca.crt, tls.crt, tls.key); read with the
    standard library's ssl, so no channel of grpc's caches it.

    Raises OSError when nothing answers there or the handshake fails.
    """
    context = ssl.create_default_context(cafile=str(identity / "ca.crt"))
    context.check_hostname = False
    context.set_alpn_protocols(["h2"])
    context.load_cert_chain(identity / "tls.crt", identity / "tls.key")
    host, port = address.rsplit(":", 1)
    with (
        socket.create_connection((host, int(port)), timeout=5) as raw,
        context.wrap_socket(raw) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    if der is None:
        raise OSError(f"{address} showed no certificate")
    return x509.load_der_x509_certificate(der)
