"""The caller check (interceptors.identity): the policy applied to a certificate's identity
before any handler runs, and the bearer token read from a call's metadata."""

from __future__ import annotations

import grpc
import pytest
import structlog
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from shop_grpc import certs
from shop_grpc.interceptors.identity import bearer_token
from shop_grpc.tokens import TokenRejected

PAYMENTS = "shop.payment.v1.PaymentService"  # the service `running` stands in for


async def test_the_policy_refuses_before_the_handler_runs_and_logs_who_and_what(running, status_of):
    async with running.channel("client") as channel:
        with structlog.testing.capture_logs() as logs:
            assert await status_of(channel, "Charge") == grpc.StatusCode.PERMISSION_DENIED
        assert await status_of(channel, "ListPayments") == grpc.StatusCode.OK
    assert running.spy.ran == ["ListPayments"]
    [denied] = [line for line in logs if line["event"] == "permission denied"]
    assert denied["caller"] == "client"
    assert denied["rpc"] == f"/{PAYMENTS}/Charge"


async def test_order_may_charge(running, status_of, namespace):
    async with running.channel("order") as channel:
        assert await status_of(channel, "Charge") == grpc.StatusCode.OK
    assert running.spy.ran == ["Charge"]
    assert running.spy.callers == [certs.spiffe_id(namespace, "order")]


async def test_a_caller_from_another_namespace_is_refused(running, status_of):
    issued = certs.issue(running.authority, "order", "elsewhere")
    certs.write_identity(running.certs / "stranger", running.authority.cert_pem, issued)
    async with running.channel("stranger") as channel:
        assert await status_of(channel, "Charge") == grpc.StatusCode.PERMISSION_DENIED
    assert running.spy.ran == []


async def test_health_and_reflection_are_open_to_any_identity(running, status_of):
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
