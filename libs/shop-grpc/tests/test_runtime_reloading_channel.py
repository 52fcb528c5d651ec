"""ReloadingChannel: a channel that follows its identity's rotation, on loopback with mTLS."""

from __future__ import annotations

import asyncio
import shutil

import grpc

from shop_grpc import certs, reloading_channel


async def test_a_new_ca_on_both_sides_takes_over_without_a_restart(
    running, monkeypatch, status_of, static_channel, namespace
):
    monkeypatch.setattr(reloading_channel, "CLIENT_CHECK_SECONDS", 0.0)
    before = running.certs / "client-before"
    shutil.copytree(running.certs / "client", before)
    async with running.channel("client") as channel:
        assert await status_of(channel, "ListPayments") == grpc.StatusCode.OK
        certs.init(running.certs, namespace, identities=["payment", "client"])  # a new CA
        assert await status_of(channel, "ListPayments") == grpc.StatusCode.OK
    # The server now trusts only the new CA: the old client certificate no longer gets in.
    new_ca = running.certs / "client" / "ca.crt"
    async with static_channel(before, new_ca, running.address) as old:
        assert await status_of(old, "ListPayments") == grpc.StatusCode.UNAVAILABLE
    assert running.spy.ran == ["ListPayments", "ListPayments"]


async def test_a_channel_presents_its_new_certificate_and_lets_calls_in_flight_finish(
    running, monkeypatch, status_of, namespace
):
    monkeypatch.setattr(reloading_channel, "CLIENT_CHECK_SECONDS", 0.0)
    folder = running.certs / "rotating"
    certs.write_identity(
        folder,
        running.authority.cert_pem,
        certs.issue(running.authority, "order", namespace),
    )
    channel = running.channel("rotating")
    async with channel:
        running.spy.delay = 0.5
        in_flight = asyncio.create_task(status_of(channel, "Charge"))
        await asyncio.sleep(0.2)
        certs.write_identity(
            folder,
            running.authority.cert_pem,
            certs.issue(running.authority, "client", namespace),
        )
        running.spy.delay = 0.0
        # The new channel presents the client identity, which may not charge...
        assert await status_of(channel, "Charge") == grpc.StatusCode.PERMISSION_DENIED
        assert await status_of(channel, "ListPayments") == grpc.StatusCode.OK
        # ...while the call already running on the old channel finishes as order.
        assert await in_flight == grpc.StatusCode.OK
    assert running.spy.ran == ["Charge", "ListPayments"]
    assert running.spy.callers == [
        certs.spiffe_id(namespace, "order"),
        certs.spiffe_id(namespace, "client"),
    ]
