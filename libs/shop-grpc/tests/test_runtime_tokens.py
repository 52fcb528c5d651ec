"""tokens: an access token passes only signed by a key of the directory, with that key's own
algorithm, for our issuer and audience, within its lifetime; keys rotate without a restart."""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import os
import uuid
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from shop_grpc import tokens
from shop_grpc.tokens import KeyDirectory, KeyFileError, KeyRing, TokenRejected

USER = str(uuid.uuid4())


def now() -> int:
    return int(datetime.datetime.now(datetime.UTC).timestamp())


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    private, public = tmp_path / "private", tmp_path / "public"
    tokens.write_new_key(private, public, "k1")
    return private, public


def rings(keys: tuple[Path, Path]) -> tuple[KeyRing, KeyRing]:
    return tokens.read_ring(keys[0]), tokens.read_ring(keys[1])


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(**changes: object) -> dict[str, object]:
    at = now()
    base: dict[str, object] = {
        "iss": tokens.ISSUER,
        "aud": tokens.AUDIENCE,
        "sub": USER,
        "iat": at,
        "nbf": at,
        "exp": at + 60,
        "jti": str(uuid.uuid4()),
    }
    base.update(changes)
    return {name: value for name, value in base.items() if value is not None}


def signed(ring: KeyRing, body: dict[str, object], **headers: object) -> str:
    key = ring.keys["k1"]
    assert key.private is not None
    header = {"kid": "k1", "typ": tokens.TOKEN_TYPE, **headers}
    header = {name: value for name, value in header.items() if value is not None}
    return jwt.encode(body, key.private, algorithm=key.algorithm, headers=header)


def rejected(ring: KeyRing, token: str) -> TokenRejected:
    with pytest.raises(TokenRejected) as caught:
        tokens.verify(ring, token)
    assert caught.value.code == "UNAUTHENTICATED"
    return caught.value


def test_a_token_the_issuer_signs_verifies_with_the_public_key_alone(keys):
    private, public = rings(keys)

    issued = tokens.issue(private, USER)
    verified = tokens.verify(public, issued.token)

    assert verified.subject == USER
    assert issued.kid == "k1"
    lifetime = issued.expire_time - datetime.datetime.now(datetime.UTC)
    assert datetime.timedelta(minutes=14) < lifetime <= datetime.timedelta(minutes=15)
    assert issued.token not in repr(issued)
    header = jwt.get_unverified_header(issued.token)
    assert header == {"alg": "EdDSA", "kid": "k1", "typ": "at+jwt"}


@pytest.mark.parametrize(
    "token",
    ["", "Bearer", "not.a.token", "a.b.c", "....", "eyJhbGciOiJFZERTQSJ9", "x" * 5000],
)
def test_a_malformed_token_is_unauthenticated(keys, token):
    rejected(rings(keys)[1], token)


def test_an_expired_token_is_unauthenticated_and_says_so(keys):
    private, public = rings(keys)
    expired = claims(
        iat=now() - 120,
        nbf=now() - 120,
        exp=now() - 60,
    )

    error = rejected(public, signed(private, expired))

    assert error.reason == "TOKEN_EXPIRED"


def test_clock_skew_within_the_leeway_is_forgiven(keys):
    private, public = rings(keys)
    just_expired = claims(exp=now() - tokens.LEEWAY_SECONDS // 2)

    assert tokens.verify(public, signed(private, just_expired)).subject == USER


def test_a_token_not_yet_valid_is_unauthenticated(keys):
    private, public = rings(keys)
    later = now() + 600

    rejected(public, signed(private, claims(nbf=later, exp=later + 60)))
    rejected(public, signed(private, claims(iat=later, exp=later + 60)))


@pytest.mark.parametrize(
    "changes",
    [{"iss": "someone-else"}, {"aud": "another-api"}, {"aud": ["another-api"]}],
    ids=["issuer", "audience", "audience-list"],
)
def test_another_issuer_or_audience_is_unauthenticated(keys, changes):
    private, public = rings(keys)

    rejected(public, signed(private, claims(**changes)))


@pytest.mark.parametrize("missing", tokens.REQUIRED_CLAIMS)
def test_a_token_without_a_required_claim_is_unauthenticated(keys, missing):
    private, public = rings(keys)

    rejected(public, signed(private, claims(**{missing: None})))


@pytest.mark.parametrize("exp", [10**20, 1e300, -(10**20)], ids=["huge", "float", "negative"])
def test_a_time_claim_out_of_any_range_is_unauthenticated(keys, exp):
    # Only the signing key's holder could send one; still an answer, never an internal error.
    private, public = rings(keys)
    assert rejected(public, signed(private, claims(exp=exp))).reason in {
        "TOKEN_INVALID",
        "TOKEN_EXPIRED",
    }


def test_a_subject_that_is_not_a_string_is_unauthenticated(keys):
    private, public = rings(keys)

    rejected(public, signed(private, claims(sub=42)))


def test_an_unknown_kid_or_none_is_unauthenticated(keys):
    private, public = rings(keys)

    rejected(public, signed(private, claims(), kid="k2"))
    rejected(public, signed(private, claims(), kid=None))


def test_another_token_type_is_unauthenticated(keys):
    private, public = rings(keys)

    rejected(public, signed(private, claims(), typ="JWT"))


def test_alg_none_is_unauthenticated(keys):
    public = rings(keys)[1]
    header = {"alg": "none", "kid": "k1", "typ": tokens.TOKEN_TYPE}
    unsigned = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims()).encode())}."

    rejected(public, unsigned)


def test_an_hmac_token_keyed_with_the_public_key_is_unauthenticated(keys):
    # The classic confusion: the verifier's own public key used as an HMAC secret.
    public = rings(keys)[1]
    secret = (keys[1] / "k1.pem").read_bytes()
    header = {"alg": "HS256", "kid": "k1", "typ": tokens.TOKEN_TYPE}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims()).encode())}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()

    rejected(public, f"{signing_input}.{b64(mac)}")


def test_a_token_signed_by_another_key_under_a_known_kid_is_unauthenticated(keys, tmp_path):
    public = rings(keys)[1]
    tokens.write_new_key(tmp_path / "other", tmp_path / "other-public", "k1")
    impostor = tokens.read_ring(tmp_path / "other")

    rejected(public, tokens.issue(impostor, USER).token)


def test_an_es256_key_signs_and_verifies_as_es256(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "ec1.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    ring = tokens.read_ring(tmp_path)

    issued = tokens.issue(ring, USER)

    assert jwt.get_unverified_header(issued.token)["alg"] == "ES256"
    assert tokens.verify(ring, issued.token).subject == USER
    assert ring.jwks()["keys"][0]["crv"] == "P-256"


@pytest.mark.parametrize(
    "key",
    [rsa.generate_private_key(65537, 2048), ec.generate_private_key(ec.SECP384R1())],
    ids=["rsa", "p-384"],
)
def test_a_key_of_another_kind_is_refused_naming_its_file(tmp_path, key):
    (tmp_path / "bad.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )

    with pytest.raises(KeyFileError, match=r"bad\.pem"):
        tokens.load_key(tmp_path / "bad.pem")
    ring = tokens.read_ring(tmp_path)
    assert ring.keys == {}
    assert len(ring.skipped) == 1 and "bad.pem" in ring.skipped[0]


def test_a_key_file_named_without_a_kid_is_refused(tmp_path):
    tokens.write_new_key(tmp_path, tmp_path / "public", "k1")
    os.rename(tmp_path / "k1.pem", tmp_path / "k 1.pem")

    with pytest.raises(KeyFileError, match=r"named <kid>\.pem"):
        tokens.load_key(tmp_path / "k 1.pem")
    assert "named <kid>.pem" in tokens.read_ring(tmp_path).skipped[0]


def test_a_secrets_hidden_entries_are_not_keys(keys):
    (keys[1] / "..data").mkdir()
    (keys[1] / ".k9.pem").write_text("not a key")

    assert set(tokens.read_ring(keys[1]).keys) == {"k1"}


def test_a_missing_directory_is_an_empty_ring_that_verifies_nothing(tmp_path, keys):
    empty = tokens.read_ring(tmp_path / "nowhere")

    assert empty.signing is None
    rejected(empty, tokens.issue(rings(keys)[0], USER).token)
    with pytest.raises(tokens.NoSigningKey):
        tokens.issue(empty, USER)


def test_the_jwks_publishes_every_public_key_and_no_private_part(keys):
    tokens.write_new_key(keys[0], keys[1], "k2")

    jwks = tokens.read_ring(keys[0]).jwks()

    assert [key["kid"] for key in jwks["keys"]] == ["k1", "k2"]
    for key in jwks["keys"]:
        assert key["kty"] == "OKP" and key["alg"] == "EdDSA" and key["use"] == "sig"
        assert "d" not in key
        assert jwt.PyJWK.from_dict(key).key_id == key["kid"]


# -- rotation ------------------------------------------------------------------------------


def test_rotation_new_tokens_use_the_new_key_old_ones_verify_until_the_key_is_removed(keys):
    directory = KeyDirectory(keys[1], check_seconds=0)
    old = tokens.issue(tokens.read_ring(keys[0]), USER)

    # 1. the new public key reaches the verifiers; 2. the issuer gets the private key.
    tokens.write_new_key(keys[0], keys[1], "k2")
    new = tokens.issue(tokens.read_ring(keys[0]), USER)

    assert new.kid == "k2"
    assert tokens.verify(directory.ring(), old.token).subject == USER
    assert tokens.verify(directory.ring(), new.token).subject == USER

    # 3. once every old token has expired, the old key goes.
    (keys[1] / "k1.pem").unlink()

    assert rejected(directory.ring(), old.token).reason == "TOKEN_INVALID"
    assert tokens.verify(directory.ring(), new.token).subject == USER


def test_a_stray_file_holds_back_neither_the_good_keys_nor_a_removal(keys):
    directory = KeyDirectory(keys[1], check_seconds=0)
    old = tokens.issue(tokens.read_ring(keys[0]), USER).token
    tokens.write_new_key(keys[0], keys[1], "k2")
    new = tokens.issue(tokens.read_ring(keys[0]), USER).token

    (keys[1] / "k3.pem").write_text("half-written")
    (keys[1] / "backup.v1.pem").write_bytes((keys[1] / "k1.pem").read_bytes())

    assert tokens.verify(directory.ring(), old).subject == USER
    assert tokens.verify(directory.ring(), new).subject == USER
    assert len(directory.ring().skipped) == 2
    # k1 leaked: removed at once, it stops verifying though the stray files are still there.
    (keys[1] / "k1.pem").unlink()
    assert rejected(directory.ring(), old).reason == "TOKEN_INVALID"
    assert tokens.verify(directory.ring(), new).subject == USER


def test_the_newest_private_key_signs(tmp_path):
    for kid in ("20260101T000000Z", "20261201T000000Z", "20260601T000000Z"):
        tokens.write_new_key(tmp_path / "private", tmp_path / "public", kid)
    private_key = ed25519.Ed25519PrivateKey.generate()
    (tmp_path / "public" / "20990101T000000Z.pem").write_bytes(
        private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )

    assert tokens.read_ring(tmp_path / "private").signing.kid == "20261201T000000Z"  # type: ignore[union-attr]
    assert tokens.read_ring(tmp_path / "public").signing is None


def test_new_key_writes_the_private_half_for_its_owner_only(tmp_path):
    kid = tokens.write_new_key(tmp_path / "private", tmp_path / "public")

    assert tokens.KID.match(kid)
    assert (tmp_path / "private" / f"{kid}.pem").stat().st_mode & 0o777 == 0o600
    assert b"PRIVATE" not in (tmp_path / "public" / f"{kid}.pem").read_bytes()


def test_the_new_key_command_prints_the_kid_it_wrote(tmp_path, capsys):
    assert tokens.main(["new-key", str(tmp_path / "private"), str(tmp_path / "public")]) == 0

    kid = capsys.readouterr().out.strip()
    assert tokens.read_ring(tmp_path / "private").signing.kid == kid  # type: ignore[union-attr]
    assert set(tokens.read_ring(tmp_path / "public").keys) == {kid}
