"""The running suite refuses whoever lacks a suite certificate or the policy's leave."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2_grpc

from shop.inventory.v1 import inventory_pb2, inventory_pb2_grpc
from shop.order.v1 import order_pb2
from shop.payment.v1 import payment_pb2, payment_pb2_grpc
from shop_cli.suite import NAMESPACE
from shop_grpc import registry
from shop_grpc.channels import open_channel
from shop_grpc.config import TlsSettings
from shop_grpc.testing import Certificates, id_for, issue_certificates, served_certificate


def channel_as(suite, identity_dir: Path, service: str) -> grpc.aio.Channel:
    return open_channel(
        suite.endpoints()[service], tls=TlsSettings(identity_dir), server_name=service
    )


async def code_of(call) -> grpc.StatusCode:
    try:
        await call
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


async def test_a_call_without_a_client_certificate_is_refused(suite):
    ca = (suite.certs_dir / "client" / "ca.crt").read_bytes()
    credentials = grpc.ssl_channel_credentials(root_certificates=ca)
    options = [("grpc.ssl_target_name_override", "inventory")]
    target = suite.endpoints()["inventory"]
    async with grpc.aio.secure_channel(target, credentials, options=options) as channel:
        stub = inventory_pb2_grpc.InventoryServiceStub(channel)
        request = inventory_pb2.ListProductsRequest()
        assert await code_of(stub.ListProducts(request, timeout=5)) == grpc.StatusCode.UNAVAILABLE


async def test_a_certificate_from_another_ca_is_refused(suite, tmp_path):
    foreign = issue_certificates(tmp_path, "local", identities=["client"])
    # Trusting the suite's CA for the server, presenting a client certificate it did not sign.
    (foreign.identity("client") / "ca.crt").write_bytes(
        (suite.certs_dir / "ca" / "ca.crt").read_bytes()
    )
    async with channel_as(suite, foreign.identity("client"), "inventory") as channel:
        stub = inventory_pb2_grpc.InventoryServiceStub(channel)
        request = inventory_pb2.ListProductsRequest()
        assert await code_of(stub.ListProducts(request, timeout=5)) == grpc.StatusCode.UNAVAILABLE


@pytest.mark.local_only  # reads the local suite's logs or certificates
async def test_the_operator_may_not_reserve_stock_or_charge(suite, shop):
    product = await shop.product(stock=5)
    client = suite.certs_dir / "client"
    async with channel_as(suite, client, "inventory") as channel:
        inventory = inventory_pb2_grpc.InventoryServiceStub(channel)
        reserve = inventory.ReserveItems(
            inventory_pb2.ReserveItemsRequest(order_id=id_for("o-by-hand")), timeout=5
        )
        assert await code_of(reserve) == grpc.StatusCode.PERMISSION_DENIED
    async with channel_as(suite, client, "payment") as channel:
        payments = payment_pb2_grpc.PaymentServiceStub(channel)
        charge = payments.Charge(payment_pb2.ChargeRequest(order_id=id_for("o-by-hand")), timeout=5)
        assert await code_of(charge) == grpc.StatusCode.PERMISSION_DENIED
    assert (await shop.stock(product)).available == 5
    assert await shop.payments_of(id_for("o-by-hand")) == []
    denied = [line for line in suite.log_tail("inventory", 200) if "permission denied" in line]
    assert any("ReserveItems" in line and '"caller": "client"' in line for line in denied)


@pytest.mark.local_only  # reads the local suite's logs or certificates
async def test_order_itself_may_reserve_stock(suite, shop):
    product = await shop.product(stock=5)
    async with channel_as(suite, suite.certs_dir / "order", "inventory") as channel:
        inventory = inventory_pb2_grpc.InventoryServiceStub(channel)
        request = inventory_pb2.ReserveItemsRequest(
            order_id=id_for("o-as-order"), lines=[{"product_id": product, "quantity": 2}]
        )
        await inventory.ReserveItems(request, timeout=5)
        await inventory.ReleaseReservation(
            inventory_pb2.ReleaseReservationRequest(order_id=id_for("o-as-order")), timeout=5
        )
    assert (await shop.stock(product)).available == 5


@pytest.mark.parametrize("service", registry.names())
async def test_the_probe_port_serves_health_in_plaintext_and_nothing_else(suite, service):
    async with grpc.aio.insecure_channel(suite.probe_endpoints()[service]) as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        # No request sent: the refusal may come before a message could be written.
        listing = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(timeout=5)
        assert await listing.code() == grpc.StatusCode.UNIMPLEMENTED


@pytest.mark.local_only  # reads the local suite's logs or certificates
def test_shop_demo_finds_the_client_identity_in_the_data_dir(suite, target_flags):
    targets = list(target_flags)
    env = {**os.environ, "SHOP_DATA_DIR": str(suite.data_dir)}
    env.pop("SHOP_TLS_DIR", None)
    demo = subprocess.run(
        [sys.executable, "-m", "shop_cli", "demo", *targets],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "CONFIRMED" in demo.stdout


@pytest.mark.local_only  # reads the local suite's logs or certificates
async def test_rewritten_certificates_are_used_without_a_restart(suite, shop):
    suite_certificates = Certificates.at(suite.certs_dir, NAMESPACE)
    client = suite.certs_dir / "client"
    inventory = suite.endpoints()["inventory"]
    # Server side: inventory shows new connections the certificate now in its files.
    issued = suite_certificates.reissue("inventory")
    assert served_certificate(inventory, client).serial_number == issued.cert.serial_number
    # Client side: order's channels present its new certificate on fresh connections.
    suite_certificates.reissue("order")
    await asyncio.sleep(1.2)  # channels look at their files at most once a second
    user, product = await shop.user(), await shop.product(stock=3)
    placed = await shop.place(user, {product: 1})
    assert placed.status == order_pb2.Order.STATUS_CONFIRMED
    assert any(
        "channel rebuilt with the new certificate" in line for line in suite.log_tail("order", 400)
    )
