"""Throwaway access token keys, laid out as the chart's secrets Job lays them out: private
keys for the user service, their public halves for the services that verify."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from shop_grpc import tokens
from shop_grpc.config import TokenSettings


@dataclass(frozen=True)
class TokenKeys:
    private: Path
    """The issuer's directory (the user service's SHOP_TOKEN_KEYS_DIR)."""
    public: Path
    """The verifiers' directory (every other service's SHOP_TOKEN_KEYS_DIR)."""

    def issuer(self) -> TokenSettings:
        return TokenSettings(self.private)

    def verifier(self) -> TokenSettings:
        return TokenSettings(self.public)

    def token_for(self, user_id: str) -> str:
        """A valid access token for `user_id`, signed with the newest key."""
        return tokens.issue(tokens.read_ring(self.private), user_id).token

    def rotate(self, kid: str) -> None:
        """Adds a new key pair named `kid`, which signs from now on."""
        tokens.write_new_key(self.private, self.public, kid)


def make_token_keys(directory: Path, kid: str = "20260101T000000Z") -> TokenKeys:
    """A first key pair under ``directory/private`` and ``directory/public``."""
    keys = TokenKeys(directory / "private", directory / "public")
    keys.rotate(kid)
    return keys


def bearer(token: str) -> tuple[tuple[str, str]]:
    """Call metadata carrying `token` as RFC 6750 says."""
    return (("authorization", f"Bearer {token}"),)
