"""Salted scrypt password hashes: ``scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>``.

scrypt is deliberately slow (tens of milliseconds), so the async functions run
it in a worker thread: the event loop keeps serving other calls meanwhile.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import hashlib
import hmac
import os
from collections.abc import Sequence

SCHEME = "scrypt"
N = 2**14
R = 8
P = 1
SALT_BYTES = 16
KEY_BYTES = 64
# scrypt needs 128 * n * r bytes (16 MiB here); leave headroom above OpenSSL's 32 MiB default.
MAX_MEMORY = 64 * 1024 * 1024


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=r, p=p, maxmem=MAX_MEMORY, dklen=KEY_BYTES
    )


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def hash_password(password: str) -> str:
    """A fresh random salt and the scrypt hash, encoded in one string."""
    salt = os.urandom(SALT_BYTES)
    digest = _derive(password, salt, N, R, P)
    return f"{SCHEME}${N}${R}${P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    """True if `password` produced `encoded`; False also for anything malformed."""
    try:
        scheme, n, r, p, salt, digest = encoded.split("$")
        if scheme != SCHEME:
            return False
        expected = base64.b64decode(digest, validate=True)
        actual = _derive(password, base64.b64decode(salt, validate=True), int(n), int(r), int(p))
    except (ValueError, binascii.Error):
        return False
    # Constant time, so response timing reveals nothing about how close a guess was.
    return hmac.compare_digest(actual, expected)


@functools.cache
def unknown_account_hash() -> str:
    """A hash of a random password nobody knows, made once per process: checking a password
    against it costs what checking a real account's does, so a sign-in for an account that
    does not exist takes as long as one with a wrong password (OWASP Authentication Cheat
    Sheet). The composition root makes it at start, so no sign-in pays for making it."""
    return hash_password(base64.b64encode(os.urandom(24)).decode())


async def hash_password_async(password: str) -> str:
    return await asyncio.to_thread(hash_password, password)


async def verify_password_async(password: str, encoded: str) -> bool:
    return await asyncio.to_thread(verify_password, password, encoded)


async def hash_passwords(passwords: Sequence[str]) -> list[str]:
    """Hashes many passwords in parallel threads, at most one per CPU at a time.

    Each hash holds 16 MiB while it runs, so a batch of a thousand must not run at once.
    """
    limit = asyncio.Semaphore(os.cpu_count() or 1)

    async def one(password: str) -> str:
        async with limit:
            return await hash_password_async(password)

    return list(await asyncio.gather(*(one(p) for p in passwords)))
