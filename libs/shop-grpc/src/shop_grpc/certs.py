"""A private CA and one certificate per identity, in the Kubernetes TLS-secret layout.

    <dir>/ca/ca.crt, ca.key                      the CA (keep ca.key off the cluster)
    <dir>/<identity>/ca.crt, tls.crt, tls.key    one per identity, mountable as a Secret

Identities are the four services and ``client`` (the operator's `shop` CLI). Each
certificate names its identity in a SPIFFE-style URI SAN,
``spiffe://shop/ns/<namespace>/sa/<identity>``, which the servers' policy checks.
A service's certificate also carries a DNS SAN for every name clients dial: the
Service and the headless Service, bare and in their ``.<ns>``, ``.<ns>.svc`` and
``.<ns>.svc.cluster.local`` forms, plus ``localhost``, 127.0.0.1 and ::1 for tools
run on the same machine.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from shop_grpc import registry
from shop_grpc.registry import CLIENT

TRUST_DOMAIN = "shop"
CA_DIR = "ca"
CA_FILE = "ca.crt"
CERT_FILE = "tls.crt"
KEY_FILE = "tls.key"
LOOPBACK_IPS = ("127.0.0.1", "::1")
DEFAULT_DAYS = 365
CA_DAYS = 3650
# A clock a little behind ours must still accept a certificate made just now.
_BACKDATE = datetime.timedelta(minutes=5)

PrivateKey = ec.EllipticCurvePrivateKey


def spiffe_id(namespace: str, identity: str) -> str:
    return f"spiffe://{TRUST_DOMAIN}/ns/{namespace}/sa/{identity}"


def parse_spiffe_id(uri: str) -> tuple[str, str] | None:
    """(namespace, identity) of a ``spiffe://shop/ns/<ns>/sa/<name>`` URI; None if not one."""
    prefix = f"spiffe://{TRUST_DOMAIN}/"
    if not uri.startswith(prefix):
        return None
    parts = uri[len(prefix) :].split("/")
    if len(parts) != 4 or parts[0] != "ns" or parts[2] != "sa" or not parts[1] or not parts[3]:
        return None
    return parts[1], parts[3]


def dns_names(service: str, namespace: str) -> list[str]:
    names: list[str] = []
    for host in (service, f"{service}-headless"):
        names += [
            host,
            f"{host}.{namespace}",
            f"{host}.{namespace}.svc",
            f"{host}.{namespace}.svc.cluster.local",
        ]
    return [*names, "localhost"]


@dataclass(frozen=True)
class Authority:
    """The CA: signs every identity's certificate."""

    key: PrivateKey
    cert: x509.Certificate

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class Issued:
    key: PrivateKey
    cert: x509.Certificate

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return _key_pem(self.key)


def _key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def new_authority(namespace: str, *, days: int = CA_DAYS) -> Authority:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, TRUST_DOMAIN),
            x509.NameAttribute(NameOID.COMMON_NAME, f"shop CA ({namespace})"),
        ]
    )
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Authority(key, cert)


def issue(
    authority: Authority,
    identity: str,
    namespace: str,
    *,
    days: int = DEFAULT_DAYS,
    extra_ips: Iterable[str] = (),
    names: Iterable[str] | None = None,
) -> Issued:
    """A certificate for `identity`: services may serve and call, the client only calls.

    `names`: the DNS names a service is dialled by, when not the usual ones (a Helm
    release prefixes its Services).
    """
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [x509.UniformResourceIdentifier(spiffe_id(namespace, identity))]
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
    if identity != CLIENT:
        names = dns_names(identity, namespace) if names is None else names
        sans += [x509.DNSName(name) for name in names]
        sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in (*LOOPBACK_IPS, *extra_ips)]
        usages.insert(0, ExtendedKeyUsageOID.SERVER_AUTH)
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, TRUST_DOMAIN),
                    x509.NameAttribute(NameOID.COMMON_NAME, identity),
                ]
            )
        )
        .issuer_name(authority.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(authority.key.public_key()),
            critical=False,
        )
        .sign(authority.key, hashes.SHA256())
    )
    return Issued(key, cert)


def write_file(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replaces `path` in one step, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def write_identity(directory: Path, authority_pem: bytes, issued: Issued) -> None:
    """Writes ca.crt, tls.crt and tls.key; the key last, readable by the owner only.

    A reader may still catch the new certificate with the old key for a moment;
    the loader checks that they match and keeps what it had until they do.
    """
    write_file(directory / CA_FILE, authority_pem)
    write_file(directory / CERT_FILE, issued.cert_pem)
    write_file(directory / KEY_FILE, issued.key_pem, 0o600)


def write_authority(out: Path, authority: Authority) -> None:
    write_file(out / CA_DIR / CA_FILE, authority.cert_pem)
    write_file(out / CA_DIR / "ca.key", _key_pem(authority.key), 0o600)


def load_authority(out: Path) -> Authority:
    cert = x509.load_pem_x509_certificate((out / CA_DIR / CA_FILE).read_bytes())
    key = serialization.load_pem_private_key((out / CA_DIR / "ca.key").read_bytes(), None)
    if not isinstance(key, PrivateKey):
        raise ValueError(f"{out / CA_DIR / 'ca.key'}: not an EC private key")
    return Authority(key, cert)


def init(
    out: Path,
    namespace: str,
    *,
    identities: Iterable[str] | None = None,
    days: int = DEFAULT_DAYS,
    authority: Authority | None = None,
) -> Authority:
    """A CA (new unless given) and a certificate per identity under `out` (every installed
    service's and the CLI's when None)."""
    authority = authority or new_authority(namespace)
    write_authority(out, authority)
    for identity in registry.identities() if identities is None else identities:
        issued = issue(authority, identity, namespace, days=days)
        write_identity(out / identity, authority.cert_pem, issued)
    return authority


def complete(out: Path) -> bool:
    """Whether `out` holds the CA and every installed identity's three files."""
    files = [out / CA_DIR / CA_FILE] + [
        out / identity / name
        for identity in registry.identities()
        for name in (CA_FILE, CERT_FILE, KEY_FILE)
    ]
    return all(path.is_file() for path in files)


def ensure(out: Path, namespace: str) -> bool:
    """Creates the certificates unless `out` already holds a full set; True if it made them."""
    if complete(out):
        return False
    init(out, namespace)
    return True
