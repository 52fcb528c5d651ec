"""make_token_keys and bearer (shop_grpc.testing.tokens): keys laid out for the issuer and the
verifiers, and the metadata carrying a token."""

from __future__ import annotations

from pathlib import Path

from shop_grpc import tokens
from shop_grpc.interceptors.identity import bearer_token
from shop_grpc.testing import bearer, make_token_keys


def test_a_token_signed_by_the_issuer_is_verified_with_the_public_keys_alone(
    tmp_path: Path,
) -> None:
    keys = make_token_keys(tmp_path)
    verifiers = tokens.read_ring(keys.public)
    assert verifiers.signing is None  # no private key where the verifiers read
    assert tokens.verify(verifiers, keys.token_for("u-1")).subject == "u-1"
    keys.rotate("20270101T000000Z")
    token = keys.token_for("u-2")
    assert tokens.verify(tokens.read_ring(keys.public), token).subject == "u-2"
    assert bearer_token(bearer(token)) == token
