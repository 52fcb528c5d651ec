"""Customer access tokens: JWTs signed by the user service, verified offline by the others.

A token is a JWT (RFC 7519) in compact JWS form (RFC 7515), signed with an asymmetric key:
Ed25519 (``EdDSA``, RFC 8037) or P-256 (``ES256``). Signing and verifying are PyJWT's; this
module only decides which key and which rules.

Keys live in a directory (a mounted Secret), one PEM file per key, named ``<kid>.pem``::

    <dir>/20261130T040000Z.pem    a private key (PKCS #8): the issuer signs with it, and
                                  its public half verifies
    <dir>/20261001T090000Z.pem    a public key (SubjectPublicKeyInfo): verifies only

The issuer signs with the private key whose kid sorts last (kids are UTC times, so the newest);
a verifier accepts a token signed by any key of its directory, looked up by the token's
``kid``, with that key's own algorithm only. The user service mounts the private keys; the
services that verify mount the public ones. ``KeyDirectory`` reads the directory again when it
changes, so a key is added or removed without a restart (README, "Rotating the signing key").

What a token must be to pass (RFC 8725, the JWT best current practices):

- at most ``MAX_TOKEN_BYTES``; ``typ`` ``at+jwt`` (RFC 9068 section 2.1, explicit typing);
- ``kid`` naming a key of the directory; ``alg`` exactly that key's algorithm, so ``none``,
  an HMAC algorithm keyed with the public key, or another key type never verify (RFC 8725
  sections 2.1, 3.1);
- every claim of ``REQUIRED_CLAIMS``; ``iss`` ``ISSUER`` and ``aud`` ``AUDIENCE``
  (RFC 8725 sections 3.8, 3.9); ``exp`` in the future and ``nbf``/``iat`` not in it, each within
  ``LEEWAY_SECONDS`` of clock skew.

Anything else is ``TokenRejected`` (UNAUTHENTICATED). Its message never holds the token.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from jwt.algorithms import ECAlgorithm, OKPAlgorithm

from shop_grpc.certs import write_file
from shop_grpc.config import ConfigError
from shop_grpc.errors import Unauthenticated

log = structlog.get_logger("shop_grpc.tokens")

ISSUER = "shop-user"
"""``iss`` of every access token: the user service."""
AUDIENCE = "shop"
"""``aud`` of every access token: the suite's customer-facing APIs."""
TOKEN_TYPE = "at+jwt"
"""The ``typ`` header of an access token (RFC 9068 section 2.1)."""
ACCESS_TOKEN_SECONDS = 900
"""Lifetime of an access token: 15 minutes. There is no refresh token: a customer signs in
again, so nothing long-lived exists to be stolen, and a token ends by itself this soon."""
LEEWAY_SECONDS = 10
"""Clock skew allowed between the issuer's and a verifier's clocks, on exp, nbf and iat."""
REQUIRED_CLAIMS = ("exp", "iat", "nbf", "sub", "iss", "aud", "jti")
MAX_TOKEN_BYTES = 4096
"""Longer tokens are refused before any parsing: ours are about 350 bytes."""
KID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
"""A key id, which is also its file's name without ``.pem``."""
KEY_SUFFIX = ".pem"

PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey
PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey


class TokenRejected(Unauthenticated):
    """The token does not verify; `reason` is TOKEN_EXPIRED or TOKEN_INVALID."""

    def __init__(self, message: str, *, expired: bool = False) -> None:
        super().__init__(message, reason="TOKEN_EXPIRED" if expired else "TOKEN_INVALID")


class KeyFileError(ConfigError):
    """A key file that cannot be used; names the file."""


@dataclass(frozen=True)
class Key:
    """One key of a directory: always its public half; the private half when the file held it."""

    kid: str
    algorithm: str
    """``EdDSA`` or ``ES256``, the only algorithm a token signed by this key may name."""
    public: PublicKey
    private: PrivateKey | None = None

    def jwk(self) -> dict[str, Any]:
        """The public key as a JWK (RFC 7517 section 4), with kid, alg and use."""
        if isinstance(self.public, ed25519.Ed25519PublicKey):
            jwk = OKPAlgorithm.to_jwk(self.public, as_dict=True)
        else:
            jwk = ECAlgorithm.to_jwk(self.public, as_dict=True)
        return {**jwk, "kid": self.kid, "alg": self.algorithm, "use": "sig"}


def _algorithm(public: object, where: Path) -> str:
    if isinstance(public, ed25519.Ed25519PublicKey):
        return "EdDSA"
    if isinstance(public, ec.EllipticCurvePublicKey) and isinstance(public.curve, ec.SECP256R1):
        return "ES256"
    raise KeyFileError(f"{where}: not an Ed25519 or P-256 key")


def load_key(path: Path) -> Key:
    """The key in `path` (``<kid>.pem``, private or public PEM). Raises KeyFileError."""
    kid = path.name.removesuffix(KEY_SUFFIX)
    if not KID.match(kid):
        raise KeyFileError(f"{path}: a key file is named <kid>.pem, kid matching {KID.pattern}")
    try:
        pem = path.read_bytes()
    except OSError as error:
        raise KeyFileError(f"{path}: {error.strerror}") from error
    private: object | None = None
    try:
        if b"PRIVATE KEY" in pem:
            private = serialization.load_pem_private_key(pem, None)
            public: object = private.public_key()
        else:
            public = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as error:
        raise KeyFileError(f"{path}: not a PEM key") from error
    algorithm = _algorithm(public, path)
    assert isinstance(public, PublicKey)
    return Key(kid, algorithm, public, private if isinstance(private, PrivateKey) else None)


@dataclass(frozen=True)
class KeyRing:
    """The keys of one reading of a directory, by kid."""

    keys: Mapping[str, Key]
    skipped: tuple[str, ...] = ()
    """Why each file of the directory that is no usable key was left out (KeyFileError's
    message, naming the file)."""

    @property
    def signing(self) -> Key | None:
        """The private key whose kid sorts last, or None when the ring holds none."""
        private = [kid for kid, key in self.keys.items() if key.private is not None]
        return self.keys[max(private)] if private else None

    def jwks(self) -> dict[str, Any]:
        """Every public key as a JWK Set (RFC 7517 section 5), by kid."""
        return {"keys": [self.keys[kid].jwk() for kid in sorted(self.keys)]}


EMPTY = KeyRing({})


def read_ring(directory: Path) -> KeyRing:
    """Every ``<kid>.pem`` of `directory`; names starting with a dot (a Secret's ``..data``)
    are not keys. A missing directory is an empty ring. A file that is no usable key (half
    written, another kind of key, a name that is no kid) is left out and named in
    ``skipped``, rather than holding back the rest: a key removed because it leaked must
    stop verifying even while a stray file sits beside it. Raises KeyFileError only when
    the directory itself cannot be read."""
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return EMPTY
    except OSError as error:
        raise KeyFileError(f"{directory}: {error.strerror}") from error
    keys: dict[str, Key] = {}
    skipped: list[str] = []
    for name in names:
        if not name.endswith(KEY_SUFFIX) or name.startswith("."):
            continue
        try:
            key = load_key(directory / name)
        except KeyFileError as error:
            skipped.append(str(error))
            continue
        keys[key.kid] = key
    return KeyRing(keys, tuple(skipped))


Signature = tuple[tuple[str, int, int, int], ...]


class KeyDirectory:
    """A key directory, read again when its files change, looked at most every
    `check_seconds`. Files that are no usable key are logged and left out; a directory that
    cannot be read at all keeps the last ring (and is logged)."""

    def __init__(self, directory: Path, check_seconds: float = 1.0) -> None:
        self.directory = directory
        self.check_seconds = check_seconds
        self._lock = threading.Lock()
        self._checked = time.monotonic()
        self._signature = self._stat()
        self._ring = read_ring(directory)
        _log_skipped(self._ring)

    def _stat(self) -> Signature:
        try:
            names = sorted(n for n in os.listdir(self.directory) if n.endswith(KEY_SUFFIX))
        except OSError:
            return ()
        stats = []
        for name in names:
            try:
                # stat follows symlinks: a Secret's ..data swap shows as a new inode.
                st = os.stat(self.directory / name)
            except OSError:
                continue
            stats.append((name, st.st_ino, st.st_mtime_ns, st.st_size))
        return tuple(stats)

    def ring(self) -> KeyRing:
        """The current keys."""
        now = time.monotonic()
        if now - self._checked < self.check_seconds:
            return self._ring
        with self._lock:
            self._checked = now
            signature = self._stat()
            if signature != self._signature:
                self._signature = signature
                self._reload()
        return self._ring

    def _reload(self) -> None:
        try:
            ring = read_ring(self.directory)
        except KeyFileError as error:
            log.warning("token keys not readable; keeping the last ones", error=str(error))
            return
        self._ring = ring
        log.info("token keys reloaded", directory=str(self.directory), kids=sorted(ring.keys))
        _log_skipped(ring)


def _log_skipped(ring: KeyRing) -> None:
    for reason in ring.skipped:
        log.warning("token key file left out", error=reason)


@dataclass(frozen=True)
class Issued:
    token: str = field(repr=False)
    """The compact JWS; a secret of its holder, never logged."""
    kid: str
    token_id: str
    """``jti``: names the token in logs without revealing it."""
    expire_time: datetime.datetime


@dataclass(frozen=True)
class Claims:
    """What a verified token says."""

    subject: str
    """The user id."""
    token_id: str
    """``jti``: names the token in logs without revealing it."""
    expire_time: datetime.datetime


class NoSigningKey(Exception):
    """The ring holds no private key to sign with."""


def issue(
    ring: KeyRing,
    subject: str,
    *,
    now: datetime.datetime | None = None,
    lifetime_seconds: int = ACCESS_TOKEN_SECONDS,
) -> Issued:
    """An access token for `subject` (a user id), signed with the ring's signing key.

    Raises NoSigningKey when there is none.
    """
    key = ring.signing
    if key is None or key.private is None:
        raise NoSigningKey()
    now = now or datetime.datetime.now(datetime.UTC)
    issued_at = int(now.timestamp())
    expires = issued_at + lifetime_seconds
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": subject,
        "iat": issued_at,
        "nbf": issued_at,
        "exp": expires,
        "jti": str(uuid.uuid4()),
    }
    headers = {"kid": key.kid, "typ": TOKEN_TYPE}
    token = jwt.encode(claims, key.private, algorithm=key.algorithm, headers=headers)
    expire_time = datetime.datetime.fromtimestamp(expires, datetime.UTC)
    return Issued(token, key.kid, str(claims["jti"]), expire_time)


def verify(ring: KeyRing, token: str) -> Claims:
    """The claims of `token` if it passes every rule of this module's docstring.

    Raises TokenRejected (UNAUTHENTICATED) otherwise.
    """
    if len(token) > MAX_TOKEN_BYTES:
        raise TokenRejected("the access token is too long")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise TokenRejected("the access token is malformed") from None
    kid = header.get("kid")
    key = ring.keys.get(kid) if isinstance(kid, str) else None
    if key is None:
        raise TokenRejected("the access token is signed by an unknown key")
    if header.get("typ") != TOKEN_TYPE:
        raise TokenRejected("the access token is not an access token")
    options: dict[str, Any] = {"require": list(REQUIRED_CLAIMS)}
    try:
        claims = jwt.decode(
            token,
            key.public,
            # The key's own algorithm, never the header's choice (RFC 8725 section 2.1).
            algorithms=[key.algorithm],
            audience=AUDIENCE,
            issuer=ISSUER,
            leeway=LEEWAY_SECONDS,
            options=options,  # type: ignore[arg-type]
        )
    except jwt.ExpiredSignatureError:
        raise TokenRejected("the access token has expired; sign in again", expired=True) from None
    except jwt.PyJWTError as error:
        raise TokenRejected(f"the access token is not valid: {error}") from None
    except (OverflowError, ValueError, TypeError):
        # A time claim PyJWT accepts as a number but cannot compare or convert (1e300).
        raise TokenRejected("the access token is not valid: a time claim is out of range") from None
    subject, token_id = claims["sub"], claims["jti"]
    if not isinstance(subject, str) or not subject or not isinstance(token_id, str):
        raise TokenRejected("the access token is not valid: bad sub or jti")
    try:
        expire_time = datetime.datetime.fromtimestamp(claims["exp"], datetime.UTC)
    except (OverflowError, ValueError, OSError):
        raise TokenRejected("the access token is not valid: exp is out of range") from None
    return Claims(subject, token_id, expire_time)


# -- making keys ---------------------------------------------------------------------------


def new_kid(now: datetime.datetime | None = None) -> str:
    """A kid for a key made now: its UTC time, so the newest key sorts last."""
    return (now or datetime.datetime.now(datetime.UTC)).strftime("%Y%m%dT%H%M%SZ")


def new_key_pems() -> tuple[bytes, bytes]:
    """(private PEM, public PEM) of a new Ed25519 key."""
    private = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return private, public_pem(private)


def public_pem(private_pem: bytes) -> bytes:
    """The public half (SubjectPublicKeyInfo PEM) of the private key in `private_pem`, which
    verifies what it signs. Raises ValueError for anything but an unencrypted private key."""
    private = serialization.load_pem_private_key(private_pem, None)
    return private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def write_new_key(private_dir: Path, public_dir: Path, kid: str | None = None) -> str:
    """Writes a new key pair as ``<kid>.pem`` into each directory (the private one readable
    by its owner only); returns the kid."""
    kid = kid or new_kid()
    private_pem, public_pem = new_key_pems()
    write_file(public_dir / f"{kid}{KEY_SUFFIX}", public_pem)
    write_file(private_dir / f"{kid}{KEY_SUFFIX}", private_pem, 0o600)
    return kid


def ensure_key(private_dir: Path, public_dir: Path) -> bool:
    """Makes a first key pair unless `private_dir` already holds a key; True if it made one."""
    if read_ring(private_dir).signing is not None:
        return False
    write_new_key(private_dir, public_dir)
    return True


def main(argv: list[str] | None = None) -> int:
    """``python -m shop_grpc.tokens new-key PRIVATE_DIR PUBLIC_DIR``: one new key pair."""
    parser = argparse.ArgumentParser(prog="python -m shop_grpc.tokens")
    commands = parser.add_subparsers(dest="command", required=True)
    new = commands.add_parser("new-key", help="write a new signing key pair")
    new.add_argument("private_dir", type=Path)
    new.add_argument("public_dir", type=Path)
    args = parser.parse_args(argv)
    print(write_new_key(args.private_dir, args.public_dir))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
