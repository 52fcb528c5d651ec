"""mTLS end to end on loopback: who gets in, what the policy lets them do, rotation, probes."""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
import structlog
from cryptography import x509
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from shop_grpc import certs, policy, reflection, reloading_channel
from shop_grpc.channels import open_channel
from shop_grpc.config import ConfigError, Env, TlsSettings, server_settings
from shop_grpc.interceptors.identity import bearer_token
from shop_grpc.server import GrpcServer, Registration
from shop_grpc.testing import MtlsServing, serving_mtls
from shop_grpc.tokens import TokenRejected

PAYMENTS = "shop.payment.v1.PaymentService"
NAMESPACE = "test"


@dataclass
class SpyPayments:
    """Stands in for the payment service: records which handlers ran."""

    ran: list[str] = field(default_factory=list)
    callers: list[str] = field(default_factory=list)
    delay: float = 0.0

    def registration(self) -> Registration:
        def handler(name: str) -> grpc.RpcMethodHandler:
            async def behave(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
                self.ran.append(name)
                self.callers.append(context.auth_context()["peer_spiffe_id"][0].decode())
                await asyncio.sleep(self.delay)
                return b""

            return grpc.unary_unary_rpc_method_handler(behave)

        generic = grpc.method_handlers_generic_handler(
            PAYMENTS, {name: handler(name) for name in ("Charge", "ListPayments")}
        )
        return Registration(PAYMENTS, lambda server: server.add_generic_rpc_handlers([generic]))


@dataclass(frozen=True)
class Running(MtlsServing):
    spy: SpyPayments = field(default_factory=SpyPayments)

    def channel(self, identity: str = "client") -> grpc.aio.Channel:
        return open_channel(
            self.address, tls=TlsSettings(self.certs / identity), server_name="payment"
        )


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    spy = SpyPayments()
    async with serving_mtls(tmp_path, "payment", [spy.registration()], NAMESPACE) as serving:
        yield Running(serving.server, serving.certs, serving.authority, spy)


async def call(channel: grpc.aio.Channel, method: str) -> None:
    await channel.unary_unary(f"/{PAYMENTS}/{method}")(b"", timeout=5)


async def status_of(channel: grpc.aio.Channel, method: str) -> grpc.StatusCode:
    try:
        await call(channel, method)
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


def static_channel(directory: Path | None, ca: Path, address: str) -> grpc.aio.Channel:
    """A channel with fixed credentials; no client certificate when `directory` is None."""
    key = cert = None
    if directory is not None:
        key, cert = (directory / "tls.key").read_bytes(), (directory / "tls.crt").read_bytes()
    creds = grpc.ssl_channel_credentials(ca.read_bytes(), key, cert)
    return grpc.aio.secure_channel(
        address, creds, options=[("grpc.ssl_target_name_override", "payment")]
    )


def served_certificate(address: str, client: Path) -> x509.Certificate:
    """The certificate a brand-new TLS connection is shown, read with the stdlib's ssl."""
    context = ssl.create_default_context(cafile=str(client / "ca.crt"))
    context.check_hostname = False
    context.set_alpn_protocols(["h2"])
    context.load_cert_chain(client / "tls.crt", client / "tls.key")
    host, port = address.rsplit(":", 1)
    with (
        socket.create_connection((host, int(port)), timeout=5) as raw,
        context.wrap_socket(raw) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


# -- who gets in ----------------------------------------------------------------


async def test_a_call_without_a_client_certificate_is_refused(running):
    ca = running.certs / "client" / "ca.crt"
    async with static_channel(None, ca, running.address) as channel:
        assert await status_of(channel, "ListPayments") == grpc.StatusCode.UNAVAILABLE
    assert running.spy.ran == []


async def test_a_certificate_from_another_ca_is_refused(running, tmp_path):
    other = tmp_path / "other"
    certs.init(other, NAMESPACE)  # same names, a different CA
    ca = running.certs / "client" / "ca.crt"
    async with static_channel(other / "client", ca, running.address) as channel:
        assert await status_of(channel, "ListPayments") == grpc.StatusCode.UNAVAILABLE
    assert running.spy.ran == []


async def test_a_plaintext_call_is_refused(running):
    async with grpc.aio.insecure_channel(running.address) as channel:
        assert await status_of(channel, "ListPayments") == grpc.StatusCode.UNAVAILABLE


async def test_the_client_certificate_checks_the_server_name(running):
    channel = open_channel(
        running.address, tls=TlsSettings(running.certs / "client"), server_name="inventory"
    )
    async with channel:
        assert await status_of(channel, "ListPayments") == grpc.StatusCode.UNAVAILABLE


# -- what the policy lets them do --------------------------------------------------


async def test_the_policy_refuses_before_the_handler_runs_and_logs_who_and_what(running):
    async with running.channel("client") as channel:
        with structlog.testing.capture_logs() as logs:
            assert await status_of(channel, "Charge") == grpc.StatusCode.PERMISSION_DENIED
        assert await status_of(channel, "ListPayments") == grpc.StatusCode.OK
    assert running.spy.ran == ["ListPayments"]
    [denied] = [line for line in logs if line["event"] == "permission denied"]
    assert denied["caller"] == "client"
    assert denied["rpc"] == f"/{PAYMENTS}/Charge"


async def test_order_may_charge(running):
    async with running.channel("order") as channel:
        assert await status_of(channel, "Charge") == grpc.StatusCode.OK
    assert running.spy.ran == ["Charge"]
    assert running.spy.callers == [certs.spiffe_id(NAMESPACE, "order")]


async def test_a_caller_from_another_namespace_is_refused(running):
    issued = certs.issue(running.authority, "order", "elsewhere")
    certs.write_identity(running.certs / "stranger", running.authority.cert_pem, issued)
    async with running.channel("stranger") as channel:
        assert await status_of(channel, "Charge") == grpc.StatusCode.PERMISSION_DENIED
    assert running.spy.ran == []


async def test_health_and_reflection_are_open_to_any_identity(running):
    async with running.channel("user") as channel:
        assert await status_of(channel, "ListPayments") == grpc.StatusCode.PERMISSION_DENIED
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=PAYMENTS), timeout=5
        )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        listing = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
        )
        names = {s.name async for r in listing for s in r.list_services_response.service}
    assert PAYMENTS in names


# -- rotation -----------------------------------------------------------------------


async def test_the_server_shows_new_connections_its_new_certificate(running):
    client = running.certs / "client"
    before = served_certificate(running.address, client)
    issued = certs.issue(running.authority, "payment", NAMESPACE)
    certs.write_identity(running.certs / "payment", running.authority.cert_pem, issued)
    after = served_certificate(running.address, client)
    assert before.serial_number != after.serial_number
    assert after.serial_number == issued.cert.serial_number
    async with running.channel("client") as channel:
        assert await status_of(channel, "ListPayments") == grpc.StatusCode.OK


async def test_a_new_ca_on_both_sides_takes_over_without_a_restart(running, monkeypatch):
    monkeypatch.setattr(reloading_channel, "CLIENT_CHECK_SECONDS", 0.0)
    before = running.certs / "client-before"
    shutil.copytree(running.certs / "client", before)
    async with running.channel("client") as channel:
        assert await status_of(channel, "ListPayments") == grpc.StatusCode.OK
        certs.init(running.certs, NAMESPACE, identities=["payment", "client"])  # a new CA
        assert await status_of(channel, "ListPayments") == grpc.StatusCode.OK
    # The server now trusts only the new CA: the old client certificate no longer gets in.
    new_ca = running.certs / "client" / "ca.crt"
    async with static_channel(before, new_ca, running.address) as old:
        assert await status_of(old, "ListPayments") == grpc.StatusCode.UNAVAILABLE
    assert running.spy.ran == ["ListPayments", "ListPayments"]


async def test_a_channel_presents_its_new_certificate_and_lets_calls_in_flight_finish(
    running, monkeypatch
):
    monkeypatch.setattr(reloading_channel, "CLIENT_CHECK_SECONDS", 0.0)
    folder = running.certs / "rotating"
    certs.write_identity(
        folder,
        running.authority.cert_pem,
        certs.issue(running.authority, "order", NAMESPACE),
    )
    channel = running.channel("rotating")
    async with channel:
        running.spy.delay = 0.5
        in_flight = asyncio.create_task(status_of(channel, "Charge"))
        await asyncio.sleep(0.2)
        certs.write_identity(
            folder,
            running.authority.cert_pem,
            certs.issue(running.authority, "client", NAMESPACE),
        )
        running.spy.delay = 0.0
        # The new channel presents the client identity, which may not charge...
        assert await status_of(channel, "Charge") == grpc.StatusCode.PERMISSION_DENIED
        assert await status_of(channel, "ListPayments") == grpc.StatusCode.OK
        # ...while the call already running on the old channel finishes as order.
        assert await in_flight == grpc.StatusCode.OK
    assert running.spy.ran == ["Charge", "ListPayments"]
    assert running.spy.callers == [
        certs.spiffe_id(NAMESPACE, "order"),
        certs.spiffe_id(NAMESPACE, "client"),
    ]


async def test_a_half_written_identity_keeps_the_last_good_one(running, monkeypatch):
    monkeypatch.setattr(reloading_channel, "CLIENT_CHECK_SECONDS", 0.0)
    async with running.channel("client") as channel:
        issued = certs.issue(running.authority, "client", NAMESPACE)
        certs.write_file(running.certs / "client" / "tls.crt", issued.cert_pem)  # key not yet
        assert await status_of(channel, "ListPayments") == grpc.StatusCode.OK
        certs.write_file(running.certs / "client" / "tls.key", issued.key_pem)
        assert await status_of(channel, "ListPayments") == grpc.StatusCode.OK


# -- the plaintext probe port --------------------------------------------------------


async def test_the_probe_port_answers_health_in_plaintext_and_nothing_else(running):
    probe = f"127.0.0.1:{running.server.probe.port}"
    async with grpc.aio.insecure_channel(probe) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        reply = await health.Check(health_pb2.HealthCheckRequest(service=PAYMENTS), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        assert await status_of(channel, "ListPayments") == grpc.StatusCode.UNIMPLEMENTED
        # No request sent: the refusal may come before a message could be written.
        for service in reflection.SERVICE_NAMES:
            listing = channel.stream_stream(f"/{service}/ServerReflectionInfo")(timeout=5)
            assert await listing.code() == grpc.StatusCode.UNIMPLEMENTED, service

        # Draining shows on the probe port too: it shares the health servicer.
        await running.server.set_serving(False)
        reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING
    assert running.spy.ran == []


# -- configuration and files ----------------------------------------------------------


def test_plaintext_needs_an_explicit_opt_out(tmp_path):
    assert server_settings("user", Env({})).tls.directory == Path("/etc/shop/tls")
    missing = server_settings("user", Env({"SHOP_TLS_DIR": str(tmp_path)}))
    with pytest.raises(ConfigError, match="SHOP_TLS_DIR"):
        GrpcServer(missing, [])
    assert server_settings("user", Env({"SHOP_INSECURE": "1"})).tls.directory is None
    certs.init(tmp_path, NAMESPACE, identities=["user"])
    settings = server_settings("user", Env({"SHOP_TLS_DIR": str(tmp_path / "user")}))
    assert settings.tls.directory == tmp_path / "user"
    assert settings.probe_address == "[::]:8081"


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


@pytest.mark.parametrize(
    "method",
    [
        "/shop.inventory.v1.InventoryService/ReserveItems",
        "/shop.inventory.v1.InventoryService/CommitReservation",
        "/shop.inventory.v1.InventoryService/ReleaseReservation",
        "/shop.payment.v1.PaymentService/Charge",
        "/shop.payment.v1.PaymentService/Refund",
    ],
)
def test_only_order_moves_stock_and_money(method):
    assert policy.allowed("order", method)
    for other in ("client", "user", "inventory", "payment"):
        assert not policy.allowed(other, method)


def test_the_operator_may_run_the_shop_but_unknown_methods_are_closed():
    for method in (
        "/shop.order.v1.OrderService/CreateOrder",
        "/shop.order.v1.OrderService/CancelOrder",
        "/shop.inventory.v1.InventoryService/ImportStock",
        "/shop.user.v1.UserService/DeleteUser",
        "/shop.payment.v1.PaymentService/ListPayments",
        "/grpc.health.v1.Health/Check",
    ):
        assert policy.allowed("client", method)
    assert policy.allowed("order", "/shop.user.v1.UserService/GetUser")
    assert not policy.allowed("order", "/shop.user.v1.UserService/DeleteUser")
    assert not policy.allowed("client", "/shop.user.v1.UserService/NotYetDecided")


# -- customers' bearer tokens --------------------------------------------------------------


@pytest.mark.parametrize(
    ("metadata", "token"),
    [
        ((), None),
        ((("x-other", "Bearer abc"),), None),
        ((("authorization", "Bearer abc.def.ghi"),), "abc.def.ghi"),
        ((("authorization", "bearer  abc.def.ghi "),), "abc.def.ghi"),  # RFC 6750: 1*SP
    ],
)
def test_the_bearer_token_is_read_from_the_authorization_metadata(metadata, token) -> None:
    assert bearer_token(metadata) == token


@pytest.mark.parametrize(
    "values",
    [["Basic YWxpY2U6cHc="], ["Bearer"], ["Bearer   "], ["Token abc"], ["Bearer a", "Bearer b"]],
    ids=["basic", "no-token", "blank-token", "other-scheme", "twice"],
)
def test_any_other_authorization_is_refused(values) -> None:
    with pytest.raises(TokenRejected):
        bearer_token([("authorization", value) for value in values])


def test_an_authorization_sent_as_binary_is_refused_not_passed_over() -> None:
    # Passed over, it would leave the operator's certificate acting for anyone on a call
    # that carried a customer's token.
    with pytest.raises(TokenRejected):
        bearer_token([("authorization-bin", b"Bearer abc.def.ghi")])
