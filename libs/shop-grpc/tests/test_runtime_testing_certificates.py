"""issue_certificates (shop_grpc.testing.certificates): a CA and the identities asked for."""

from __future__ import annotations

from cryptography import x509

from shop_grpc.testing import (
    Certificates,
    issue_certificates,
)


def served_certificate(certificates: Certificates, name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate((certificates.identity(name) / "tls.crt").read_bytes())


def spiffe_ids(cert: x509.Certificate) -> list[str]:
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return sans.get_values_for_type(x509.UniformResourceIdentifier)


def test_issue_certificates_makes_a_ca_and_the_identities_asked_for_signed_by_it(tmp_path):
    made = issue_certificates(tmp_path / "certs", "ns-1", identities=["order", "client"])

    for name in ("order", "client"):
        cert = served_certificate(made, name)
        cert.verify_directly_issued_by(made.authority.cert)
        assert spiffe_ids(cert) == [f"spiffe://shop/ns/ns-1/sa/{name}"]
        assert (made.identity(name) / "ca.crt").read_bytes() == made.authority.cert_pem
    assert made.tls("order").directory == tmp_path / "certs" / "order"
    assert not made.identity("payment").exists()


def test_a_reissued_identity_replaces_its_files_under_the_same_ca(tmp_path):
    made = issue_certificates(tmp_path, "ns-1", identities=["order"])
    first = served_certificate(made, "order")

    issued = Certificates.at(tmp_path, "ns-1").reissue("order", namespace="elsewhere")

    now = served_certificate(made, "order")
    assert now.serial_number == issued.cert.serial_number != first.serial_number
    now.verify_directly_issued_by(made.authority.cert)
    assert spiffe_ids(now) == ["spiffe://shop/ns/elsewhere/sa/order"]
