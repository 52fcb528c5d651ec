"""Certificates as `shop certs init` makes them (shop_grpc.certs)."""

from __future__ import annotations

from cryptography import x509

from shop_grpc import certs


def test_a_service_certificate_names_its_identity_and_every_name_clients_dial(tmp_path):
    certs.init(tmp_path, "shop")
    cert = x509.load_pem_x509_certificate((tmp_path / "inventory" / "tls.crt").read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.UniformResourceIdentifier) == [
        "spiffe://shop/ns/shop/sa/inventory"
    ]
    dns = set(sans.get_values_for_type(x509.DNSName))
    for host in ("inventory", "inventory-headless"):
        assert {host, f"{host}.shop.svc", f"{host}.shop.svc.cluster.local"} <= dns
    assert "localhost" in dns
    assert {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)} >= {"127.0.0.1", "::1"}
    client = x509.load_pem_x509_certificate((tmp_path / "client" / "tls.crt").read_bytes())
    client_sans = client.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert client_sans.get_values_for_type(x509.DNSName) == []
    assert (tmp_path / "client" / "tls.key").stat().st_mode & 0o077 == 0
    assert certs.complete(tmp_path)
