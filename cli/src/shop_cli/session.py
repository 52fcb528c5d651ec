"""The customer the `shop` commands act for: the access token `shop login` stored.

The token lives in ``$SHOP_TOKEN_FILE``, else ``<data dir>/token`` (data dir: $SHOP_DATA_DIR
or .shop), readable by its owner only (0600): it is a password for 15 minutes. When the file
is there, every call to the order service carries ``authorization: Bearer <token>`` and acts
for that customer; without it the commands act as the operator their certificate names.
`shop logout` deletes it.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from shop_cli.arguments import CliError
from shop_cli.tls import data_directory
from shop_grpc import call_details
from shop_grpc.certs import write_file

TOKEN_FILE_ENV = "SHOP_TOKEN_FILE"
TOKEN_FILE = "token"


def token_file(environ: Mapping[str, str]) -> Path:
    if environ.get(TOKEN_FILE_ENV):
        return Path(environ[TOKEN_FILE_ENV])
    return data_directory(environ) / TOKEN_FILE


def signed_in(environ: Mapping[str, str]) -> Session | None:
    """The stored session, None when nobody is signed in (no file where `shop login` writes
    by default). A token file named in $SHOP_TOKEN_FILE must be there: a mistyped name must
    not turn a customer's command into the operator's. Raises CliError otherwise."""
    path = token_file(environ)
    session = Session.load(path)
    if session is None and environ.get(TOKEN_FILE_ENV):
        raise CliError(
            f"no token at {path} (${TOKEN_FILE_ENV}): `shop login` writes one; "
            f"unset ${TOKEN_FILE_ENV} to act as the operator"
        )
    return session


@dataclass(frozen=True)
class Session:
    access_token: str = field(repr=False)
    user_id: str
    expire_time: datetime.datetime

    def save(self, path: Path) -> None:
        """Writes the file in one step, readable by its owner only."""
        data = {
            "access_token": self.access_token,
            "user_id": self.user_id,
            "expire_time": self.expire_time.isoformat(),
        }
        write_file(path, json.dumps(data).encode(), 0o600)

    @classmethod
    def load(cls, path: Path) -> Session | None:
        """The session in `path`; None when there is no file. Raises CliError when it cannot
        be read."""
        try:
            data = json.loads(path.read_text())
            return cls(
                data["access_token"],
                data["user_id"],
                datetime.datetime.fromisoformat(data["expire_time"]),
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise CliError(f"{path}: not a token `shop login` wrote ({error})") from None


def bearer(token: str) -> list[grpc.aio.ClientInterceptor]:
    """Interceptors adding `token` to every call of a channel (RFC 6750 section 2.1)."""

    def rewrite(details: Any) -> Any:
        metadata = grpc.aio.Metadata(*tuple(details.metadata or ()))
        metadata["authorization"] = f"Bearer {token}"
        return details._replace(metadata=metadata)

    return call_details.rewriting(rewrite)
