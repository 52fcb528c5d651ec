"""Creates the release's missing Secrets: mTLS identities, database passwords, and the first
access token key pair.

Run by the chart's hook Job in a service's image, with the spec the chart renders
(spec.json). A Secret that exists is never changed, so `helm upgrade` keeps the CA,
every certificate and every password; delete a Secret to have it made again. The one
addition: a service added to the chart gets its password and URL added to the database
Secret, the other keys untouched.

Helm's own genSignedCert cannot write URI SANs, and the servers identify callers by
the SPIFFE URI ``spiffe://shop/ns/<ns>/sa/<identity>``, hence this Job. Certificates
come from shop_grpc.certs, the code behind `shop certs init`.
"""

from __future__ import annotations

import base64
import json
import secrets
import ssl
import string
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from shop_grpc import certs, tokens

ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
API = "https://kubernetes.default.svc"


class Api:
    """The few calls this needs, on the pod's service-account token."""

    def __init__(self, base: str, token: str, context: ssl.SSLContext | None) -> None:
        self.base, self.token, self.context = base, token, context

    def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        request = urllib.request.Request(
            self.base + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": content_type},
        )
        with urllib.request.urlopen(request, context=self.context, timeout=30) as response:
            return json.load(response)

    def get_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return dict(self._call("GET", f"/api/v1/namespaces/{namespace}/secrets/{name}"))
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            raise

    def add_to_secret(self, namespace: str, name: str, data: dict[str, str]) -> None:
        """Adds keys (base64 values) to a Secret; a JSON merge patch leaves the others as
        they are (RFC 7386)."""
        path = f"/api/v1/namespaces/{namespace}/secrets/{name}"
        self._call("PATCH", path, {"data": data}, "application/merge-patch+json")

    def create_secret(self, namespace: str, secret: dict[str, Any]) -> None:
        try:
            self._call("POST", f"/api/v1/namespaces/{namespace}/secrets", secret)
        except urllib.error.HTTPError as error:
            # Another run made it first; what exists wins.
            if error.code != 409:
                raise


def secret(name: str, labels: dict[str, str], data: dict[str, bytes], kind: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": kind,
        "metadata": {"name": name, "labels": labels},
        "data": encoded(data),
    }


def encoded(data: dict[str, bytes]) -> dict[str, str]:
    """A Secret's `data` as the API takes it: each value in base64."""
    return {key: base64.b64encode(value).decode() for key, value in data.items()}


def decoded(found: dict[str, Any], key: str) -> bytes:
    return base64.b64decode(found["data"][key])


def pem_key(key: certs.PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def authority(api: Api, spec: dict[str, Any]) -> certs.Authority:
    """The release's CA: the stored one, or a new one stored first."""
    namespace, name = spec["namespace"], spec["tls"]["caSecret"]
    found = api.get_secret(namespace, name)
    if found is None:
        made = certs.new_authority(namespace)
        data = {"tls.crt": made.cert_pem, "tls.key": pem_key(made.key), "ca.crt": made.cert_pem}
        api.create_secret(namespace, secret(name, spec["labels"], data, "kubernetes.io/tls"))
        found = api.get_secret(namespace, name)
        assert found is not None
    key = serialization.load_pem_private_key(decoded(found, "tls.key"), None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise SystemExit(f"Secret {name}: the CA key is not an EC key")
    return certs.Authority(key, x509.load_pem_x509_certificate(decoded(found, "tls.crt")))


def make_tls(api: Api, spec: dict[str, Any]) -> None:
    namespace, days = spec["namespace"], spec["days"]
    missing = {
        identity: wanted
        for identity, wanted in spec["tls"]["identities"].items()
        if api.get_secret(namespace, wanted["secret"]) is None
    }
    if not missing:
        return
    ca = authority(api, spec)
    for identity, wanted in sorted(missing.items()):
        issued = certs.issue(ca, identity, namespace, days=days, names=wanted["dnsNames"])
        if certs.spiffe_id(namespace, identity) != wanted["spiffeId"]:
            raise SystemExit(f"{identity}: the chart asks for {wanted['spiffeId']}")
        data = {"ca.crt": ca.cert_pem, "tls.crt": issued.cert_pem, "tls.key": issued.key_pem}
        api.create_secret(
            namespace, secret(wanted["secret"], spec["labels"], data, "kubernetes.io/tls")
        )
        print(f"created Secret {wanted['secret']} for {identity} ({wanted['spiffeId']})")


def password() -> str:
    # Letters and digits only: it goes into a URL unescaped.
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(32))


def service_passwords(urls: dict[str, str]) -> dict[str, bytes]:
    """A new password per service, and its URL carrying it: ``<svc>-password``, ``<svc>-url``."""
    data = {}
    for service, url in sorted(urls.items()):
        chosen = password()
        data[f"{service}-password"] = chosen.encode()
        data[f"{service}-url"] = url.replace("{password}", chosen).encode()
    return data


def database_data(urls: dict[str, str]) -> dict[str, bytes]:
    return {"postgres-password": password().encode(), **service_passwords(urls)}


def make_database(api: Api, spec: dict[str, Any]) -> None:
    """The passwords' Secret, or, when it exists, the keys of a service added since: the
    others' passwords stay, as the database already holds them. (The bundled PostgreSQL makes
    the new service's user and database when its pod starts again with the new password.)"""
    namespace, wanted = spec["namespace"], spec["database"]
    found = api.get_secret(namespace, wanted["secret"])
    if found is None:
        data = database_data(wanted["urls"])
        api.create_secret(namespace, secret(wanted["secret"], spec["labels"], data, "Opaque"))
        print(f"created Secret {wanted['secret']} with a password per database")
        return
    held = found.get("data", {})
    added = {svc: url for svc, url in wanted["urls"].items() if f"{svc}-url" not in held}
    if added:
        api.add_to_secret(namespace, wanted["secret"], encoded(service_passwords(added)))
        print(f"added a password to Secret {wanted['secret']} for {', '.join(sorted(added))}")


def token_data(signing: dict[str, bytes]) -> dict[str, bytes]:
    """The public halves (``<kid>.pem``) of the keys in `signing`: a private key's, or the
    public key itself, which the signing Secret holds while a rotation publishes a new key
    (README, "Rotating the signing key")."""
    return {
        name: pem if b"PUBLIC KEY" in pem else tokens.public_pem(pem)
        for name, pem in signing.items()
    }


def make_tokens(api: Api, spec: dict[str, Any]) -> None:
    """A first signing key unless the signing Secret exists; the verifying Secret from the
    signing one's keys unless it exists. Rotation adds keys to both by hand (README)."""
    namespace, wanted = spec["namespace"], spec["tokens"]
    found = api.get_secret(namespace, wanted["signingSecret"])
    if found is None:
        private_pem, _ = tokens.new_key_pems()
        data = {f"{tokens.new_kid()}{tokens.KEY_SUFFIX}": private_pem}
        api.create_secret(
            namespace, secret(wanted["signingSecret"], spec["labels"], data, "Opaque")
        )
        print(f"created Secret {wanted['signingSecret']} with a first token signing key")
        found = api.get_secret(namespace, wanted["signingSecret"])
        assert found is not None
    if api.get_secret(namespace, wanted["verifyingSecret"]) is None:
        signing = {name: decoded(found, name) for name in found.get("data", {})}
        data = token_data(signing)
        api.create_secret(
            namespace, secret(wanted["verifyingSecret"], spec["labels"], data, "Opaque")
        )
        print(f"created Secret {wanted['verifyingSecret']} with its public keys")


def main(argv: list[str]) -> None:
    spec = json.loads(Path(argv[1]).read_text())
    context = ssl.create_default_context(cafile=str(ACCOUNT / "ca.crt"))
    api = Api(API, (ACCOUNT / "token").read_text().strip(), context)
    if "tls" in spec:
        make_tls(api, spec)
    if "database" in spec:
        make_database(api, spec)
    if "tokens" in spec:
        make_tokens(api, spec)


if __name__ == "__main__":
    main(sys.argv)
