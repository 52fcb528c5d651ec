"""Server and channel credentials with mTLS, on loopback: who gets in, and an identity's
files read again when they change (shop_grpc.credentials)."""

from __future__ import annotations

import grpc

from shop_grpc import certs, reloading_channel
from shop_grpc.channels import open_channel
from shop_grpc.config import TlsSettings
from shop_grpc.testing import served_certificate


async def test_a_call_without_a_client_certificate_is_refused(running, status_of, static_channel):
    ca = running.certs / "client" / "ca.crt"
    async with static_channel(None, ca, running.address) as channel:
        assert await status_of(channel, "ListPayments") == grpc.StatusCode.UNAVAILABLE
    assert running.spy.ran == []


async def test_a_certificate_from_another_ca_is_refused(
    running, tmp_path, status_of, static_channel, namespace
):
    other = tmp_path / "other"
    certs.init(other, namespace)  # same names, a different CA
    ca = running.certs / "client" / "ca.crt"
    async with static_channel(other / "client", ca, running.address) as channel:
        assert await status_of(channel, "ListPayments") == grpc.StatusCode.UNAVAILABLE
    assert running.spy.ran == []


async def test_a_plaintext_call_is_refused(running, status_of):
    async with grpc.aio.insecure_channel(running.address) as channel:
        assert await status_of(channel, "ListPayments") == grpc.StatusCode.UNAVAILABLE


async def test_the_client_certificate_checks_the_server_name(running, status_of):
    channel = open_channel(
        running.address, tls=TlsSettings(running.certs / "client"), server_name="inventory"
    )
    async with channel:
        assert await status_of(channel, "ListPayments") == grpc.StatusCode.UNAVAILABLE


async def test_the_server_shows_new_connections_its_new_certificate(running, status_of, namespace):
    client = running.certs / "client"
    before = served_certificate(running.address, client)
    issued = certs.issue(running.authority, "payment", namespace)
    certs.write_identity(running.certs / "payment", running.authority.cert_pem, issued)
    after = served_certificate(running.address, client)
    assert before.serial_number != after.serial_number
    assert after.serial_number == issued.cert.serial_number
    async with running.channel("client") as channel:
        assert await status_of(channel, "ListPayments") == grpc.StatusCode.OK


async def test_a_half_written_identity_keeps_the_last_good_one(
    running, monkeypatch, status_of, namespace
):
    monkeypatch.setattr(reloading_channel, "CLIENT_CHECK_SECONDS", 0.0)
    async with running.channel("client") as channel:
        issued = certs.issue(running.authority, "client", namespace)
        certs.write_file(running.certs / "client" / "tls.crt", issued.cert_pem)  # key not yet
        assert await status_of(channel, "ListPayments") == grpc.StatusCode.OK
        certs.write_file(running.certs / "client" / "tls.key", issued.key_pem)
        assert await status_of(channel, "ListPayments") == grpc.StatusCode.OK
