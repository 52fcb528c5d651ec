"""The chart's secrets Job script, run against an in-memory stand-in for the Kubernetes API."""

from __future__ import annotations

import base64
import importlib.util
import json
from pathlib import Path
from typing import Any

from cryptography import x509

from shop_grpc import tokens

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location(
    "shop_make_secrets", ROOT / "deploy/helm/shop/files/make_secrets.py"
)
assert _spec and _spec.loader
job = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(job)


class FakeApi:
    def __init__(self) -> None:
        self.secrets: dict[str, dict[str, Any]] = {}

    def get_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.secrets.get(f"{namespace}/{name}")

    def create_secret(self, namespace: str, secret: dict[str, Any]) -> None:
        self.secrets.setdefault(f"{namespace}/{secret['metadata']['name']}", secret)

    def add_to_secret(self, namespace: str, name: str, data: dict[str, str]) -> None:
        self.secrets[f"{namespace}/{name}"]["data"].update(data)


SPEC: dict[str, Any] = {
    "namespace": "shop",
    "labels": {"app.kubernetes.io/instance": "shop"},
    "days": 30,
    "tls": {
        "caSecret": "shop-tls-ca",
        "identities": {
            "inventory": {
                "secret": "shop-inventory-tls",
                "spiffeId": "spiffe://shop/ns/shop/sa/inventory",
                "dnsNames": ["inventory", "shop-inventory-headless.shop.svc.cluster.local"],
            },
            "client": {
                "secret": "shop-client-tls",
                "spiffeId": "spiffe://shop/ns/shop/sa/client",
                "dnsNames": [],
            },
        },
    },
    "database": {
        "secret": "shop-postgresql",
        "urls": {"order": "postgresql://shop_order:{password}@db:5432/shop_order"},
    },
}


def run(api: FakeApi) -> None:
    job.make_tls(api, json.loads(json.dumps(SPEC)))
    job.make_database(api, SPEC)


def data(api: FakeApi, name: str, key: str) -> bytes:
    return base64.b64decode(api.secrets[f"shop/{name}"]["data"][key])


def test_certificates_name_the_identity_and_every_dialed_name() -> None:
    api = FakeApi()
    run(api)
    cert = x509.load_pem_x509_certificate(data(api, "shop-inventory-tls", "tls.crt"))
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.UniformResourceIdentifier) == [
        "spiffe://shop/ns/shop/sa/inventory"
    ]
    assert set(sans.get_values_for_type(x509.DNSName)) == set(
        SPEC["tls"]["identities"]["inventory"]["dnsNames"]
    )
    ca = x509.load_pem_x509_certificate(data(api, "shop-inventory-tls", "ca.crt"))
    cert.verify_directly_issued_by(ca)
    client = x509.load_pem_x509_certificate(data(api, "shop-client-tls", "tls.crt"))
    assert not client.extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    ).value.get_values_for_type(x509.DNSName)


def test_a_second_run_changes_nothing_and_a_lost_secret_is_reissued_by_the_same_ca() -> None:
    api = FakeApi()
    run(api)
    before = json.dumps(api.secrets, sort_keys=True)
    run(api)
    assert json.dumps(api.secrets, sort_keys=True) == before
    old_ca = data(api, "shop-tls-ca", "tls.crt")
    del api.secrets["shop/shop-client-tls"]
    run(api)
    assert data(api, "shop-client-tls", "ca.crt") == old_ca


def test_database_urls_carry_their_own_password() -> None:
    api = FakeApi()
    run(api)
    password = data(api, "shop-postgresql", "order-password").decode()
    assert len(password) == 32 and password.isalnum()
    assert data(api, "shop-postgresql", "order-url").decode() == (
        f"postgresql://shop_order:{password}@db:5432/shop_order"
    )


def test_a_service_added_later_gets_its_password_and_the_others_keep_theirs() -> None:
    api = FakeApi()
    run(api)
    before = dict(api.secrets["shop/shop-postgresql"]["data"])
    later = json.loads(json.dumps(SPEC))
    later["database"]["urls"]["freight"] = (
        "postgresql://shop_freight:{password}@db:5432/shop_freight"
    )

    job.make_database(api, later)

    after = api.secrets["shop/shop-postgresql"]["data"]
    assert {k: v for k, v in after.items() if k in before} == before
    password = data(api, "shop-postgresql", "freight-password").decode()
    assert len(password) == 32 and password != data(api, "shop-postgresql", "order-password")
    assert data(api, "shop-postgresql", "freight-url").decode() == (
        f"postgresql://shop_freight:{password}@db:5432/shop_freight"
    )
    job.make_database(api, later)
    assert api.secrets["shop/shop-postgresql"]["data"] == after


TOKENS: dict[str, Any] = {
    **SPEC,
    "tokens": {"signingSecret": "shop-token-signing", "verifyingSecret": "shop-token-verifying"},
}


def secret_dir(api: FakeApi, name: str, where: Path) -> Path:
    """The Secret's keys as the files its mount shows."""
    where.mkdir()
    for key, value in api.secrets[f"shop/{name}"]["data"].items():
        (where / key).write_bytes(base64.b64decode(value))
    return where


def test_the_first_token_key_signs_in_one_secret_and_verifies_from_the_other(tmp_path) -> None:
    api = FakeApi()
    job.make_tokens(api, TOKENS)

    signing = tokens.read_ring(secret_dir(api, "shop-token-signing", tmp_path / "signing"))
    verifying = tokens.read_ring(secret_dir(api, "shop-token-verifying", tmp_path / "verifying"))

    assert signing.signing is not None
    assert set(signing.keys) == set(verifying.keys) and verifying.signing is None
    token = tokens.issue(signing, "0b0e7c1e-2c4e-4c59-9a8a-0f6a7d1c2b3a").token
    assert tokens.verify(verifying, token).subject == "0b0e7c1e-2c4e-4c59-9a8a-0f6a7d1c2b3a"


def test_token_secrets_are_kept_and_a_lost_verifying_one_is_made_from_the_signing_keys() -> None:
    api = FakeApi()
    job.make_tokens(api, TOKENS)
    before = json.dumps(api.secrets, sort_keys=True)
    job.make_tokens(api, TOKENS)
    assert json.dumps(api.secrets, sort_keys=True) == before

    verifying = api.secrets.pop("shop/shop-token-verifying")
    job.make_tokens(api, TOKENS)

    assert api.secrets["shop/shop-token-verifying"]["data"] == verifying["data"]


def test_a_lost_verifying_secret_is_made_again_midway_through_a_rotation(tmp_path) -> None:
    # Step 1 of a rotation put the new key's public half in the signing Secret as well.
    api = FakeApi()
    job.make_tokens(api, TOKENS)
    _, public = tokens.new_key_pems()
    signing = api.secrets["shop/shop-token-signing"]["data"]
    signing["20990101T000000Z.pem"] = base64.b64encode(public).decode()
    api.secrets.pop("shop/shop-token-verifying")

    job.make_tokens(api, TOKENS)

    verifying = tokens.read_ring(secret_dir(api, "shop-token-verifying", tmp_path / "v"))
    assert "20990101T000000Z" in verifying.keys and len(verifying.keys) == 2
    assert verifying.skipped == ()
