"""One CreateOrder is one trace across the four services, exported over OTLP/gRPC.

The test itself is the collector: an OTLP TraceService on loopback that the
four service processes export to, configured only through OTEL_* variables.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from shop.common.v1 import money_pb2
from shop.inventory.v1 import inventory_pb2, inventory_pb2_grpc
from shop.order.v1 import order_pb2, order_pb2_grpc
from shop.payment.v1 import payment_pb2
from shop.user.v1 import user_pb2, user_pb2_grpc
from shop_cli.suite import Suite
from shop_grpc import registry
from shop_grpc.channels import open_channel
from shop_grpc.config import PLAINTEXT, TlsSettings

pytestmark = [pytest.mark.e2e, pytest.mark.local_only]  # its own suite with a fake collector

TRACE_ID = uuid.uuid4().hex
CALLER_SPAN_ID = uuid.uuid4().hex[:16]
CARD = payment_pb2.PaymentCard(number="4242424242424242", exp_month=12, exp_year=2040, cvc="123")
PASSWORD = "correct horse battery"
_ORDER = registry.services()["order"]
SERVICES = (_ORDER.name, *_ORDER.depends_on)
"""What placing an order passes through: the order service and what it calls."""
SERVER = trace_pb2.Span.SPAN_KIND_SERVER
CLIENT = trace_pb2.Span.SPAN_KIND_CLIENT


@dataclass(frozen=True)
class Collected:
    """One exported span, flattened with its resource."""

    resource: dict[str, str]
    span: trace_pb2.Span

    @property
    def service(self) -> str:
        return self.resource["service.name"]

    @property
    def span_id(self) -> str:
        return self.span.span_id.hex()

    @property
    def parent_id(self) -> str:
        return self.span.parent_span_id.hex()

    @property
    def attributes(self) -> dict[str, str]:
        return _attributes(self.span.attributes)

    def text(self) -> str:
        """Everything the span says, to look for what it must not."""
        events = [f"{e.name} {_attributes(e.attributes)}" for e in self.span.events]
        return " ".join(
            [
                self.span.name,
                self.span.status.message,
                str(self.attributes),
                str(self.resource),
                *events,
            ]
        )


def _attributes(values: Iterable[common_pb2.KeyValue]) -> dict[str, str]:
    return {
        kv.key: str(getattr(kv.value, kv.value.WhichOneof("value") or "string_value"))
        for kv in values
    }


class Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    """The OTLP/gRPC trace endpoint a collector or Jaeger would offer on 4317."""

    def __init__(self) -> None:
        self.spans: list[Collected] = []

    async def Export(
        self,
        request: trace_service_pb2.ExportTraceServiceRequest,
        context: grpc.aio.ServicerContext,
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        for resource_spans in request.resource_spans:
            resource = _attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                self.spans.extend(Collected(resource, span) for span in scope_spans.spans)
        return trace_service_pb2.ExportTraceServiceResponse()

    def trace(self, trace_id: str) -> list[Collected]:
        return [s for s in self.spans if s.span.trace_id.hex() == trace_id]


@asynccontextmanager
async def receiving() -> AsyncIterator[tuple[Receiver, int]]:
    receiver = Receiver()
    server = grpc.aio.server()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(receiver, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield receiver, port
    finally:
        await server.stop(0)


TracedSuite = Callable[[Path, str], AbstractAsyncContextManager[Suite]]
"""The conftest's `traced_suite` fixture."""


def _channel(suite: Suite, service: str) -> grpc.aio.Channel:
    """A channel as the `shop` CLI opens it, presenting the suite's client identity."""
    tls = PLAINTEXT if suite.insecure else TlsSettings(suite.certs_dir / "client")
    return open_channel(suite.endpoints()[service], tls=tls, server_name=service)


async def _place_order(suite: Suite) -> tuple[order_pb2.Order, str]:
    """A user and a product, then a CreateOrder sent as part of the test's own trace."""
    name = f"u{uuid.uuid4().hex[:12]}"
    async with (
        _channel(suite, "user") as users,
        _channel(suite, "inventory") as inventory,
        _channel(suite, "order") as orders,
    ):
        user = await user_pb2_grpc.UserServiceStub(users).CreateUser(
            user_pb2.CreateUserRequest(
                user=user_pb2.User(username=name, email=f"{name}@example.com"), password=PASSWORD
            ),
            timeout=10,
        )
        stock = inventory_pb2_grpc.InventoryServiceStub(inventory)
        product_id = f"p-{uuid.uuid4().hex[:12]}"
        price = money_pb2.Money(currency_code="EUR", amount_minor=1250)
        await stock.CreateProduct(
            inventory_pb2.CreateProductRequest(
                product=inventory_pb2.Product(product_id=product_id, title="Lamp", price=price)
            ),
            timeout=10,
        )
        await stock.ImportStock(
            iter(
                [
                    inventory_pb2.ImportStockRequest(
                        request_id=str(uuid.uuid4()), product_id=product_id, quantity=5
                    )
                ]
            ),
            timeout=10,
        )
        request = order_pb2.CreateOrderRequest(
            user_id=user.user_id,
            lines=[money_pb2.LineItem(product_id=product_id, quantity=2)],
            card=CARD,
        )
        traceparent = f"00-{TRACE_ID}-{CALLER_SPAN_ID}-01"
        order = await order_pb2_grpc.OrderServiceStub(orders).CreateOrder(
            request, timeout=20, metadata=(("traceparent", traceparent),)
        )
    return order, name


EXPECTED_CALLS = {
    ("shop-user", "/shop.user.v1.UserService/GetUser"),
    ("shop-inventory", "/shop.inventory.v1.InventoryService/ReserveItems"),
    ("shop-inventory", "/shop.inventory.v1.InventoryService/CommitReservation"),
    ("shop-payment", "/shop.payment.v1.PaymentService/CreatePaymentMethod"),
    ("shop-payment", "/shop.payment.v1.PaymentService/Charge"),
}


async def _collected(receiver: Receiver, wait_seconds: float = 10.0) -> list[Collected]:
    """The trace, once every expected server span has arrived."""
    async with asyncio.timeout(wait_seconds):
        while True:
            spans = receiver.trace(TRACE_ID)
            served = {(s.service, s.span.name) for s in spans if s.span.kind == SERVER}
            if served >= EXPECTED_CALLS:
                await asyncio.sleep(0.3)  # stragglers of the same batch
                return receiver.trace(TRACE_ID)
            await asyncio.sleep(0.1)


async def test_one_create_order_is_one_trace_across_four_services(
    tmp_path: Path, traced_suite: TracedSuite
) -> None:
    async with (
        receiving() as (receiver, port),
        traced_suite(tmp_path, f"http://127.0.0.1:{port}") as suite,
    ):
        order, username = await _place_order(suite)
        assert order.status == order_pb2.Order.STATUS_CONFIRMED
        spans = await _collected(receiver)
        instance_ids = {name: suite.environment(name)["SHOP_INSTANCE_ID"] for name in SERVICES}
    by_id = {s.span_id: s for s in spans}

    # Every service took part, each span names its replica.
    assert {s.service for s in spans} == {f"shop-{name}" for name in SERVICES}
    for s in spans:
        assert s.resource["service.instance.id"] == instance_ids[s.service.removeprefix("shop-")]

    # The order server span hangs under the caller; everything else under something in the trace.
    [root] = [s for s in spans if s.span.name == "/shop.order.v1.OrderService/CreateOrder"]
    assert (root.service, root.span.kind, root.parent_id) == ("shop-order", SERVER, CALLER_SPAN_ID)
    assert all(s.parent_id in by_id for s in spans if s is not root), "orphan spans"

    # Across processes: each server span's parent is the order service's client span of that call.
    for service, method in EXPECTED_CALLS:
        [server] = [
            s for s in spans if (s.service, s.span.name, s.span.kind) == (service, method, SERVER)
        ]
        client = by_id[server.parent_id]
        assert (client.service, client.span.name, client.span.kind) == (
            "shop-order",
            method,
            CLIENT,
        )

    # The saga's steps sit under CreateOrder; the calls they make sit under them.
    steps = {s.span.name: s for s in spans if s.span.name.startswith("saga ")}
    assert {"saga CHECKING_USER", "saga RESERVING_STOCK", "saga CHARGING_PAYMENT"} <= set(steps)
    for step in steps.values():
        assert _ancestors(step, by_id)[-1] is root
        assert step.attributes["shop.order.id"] == order.order_id
        assert step.attributes["shop.order.items"] == "2"
    charging = steps["saga CHARGING_PAYMENT"]
    assert (
        charging.attributes["shop.order.amount_minor"],
        charging.attributes["shop.order.currency"],
    ) == ("2500", "EUR")
    reserve_client = next(
        s for s in spans if s.span.kind == CLIENT and s.span.name.endswith("/ReserveItems")
    )
    assert reserve_client.parent_id == steps["saga RESERVING_STOCK"].span_id

    # Database work shows up in every service, as statements without their values.
    sql = [s for s in spans if "db.statement" in s.attributes]
    assert {s.service for s in sql} == {f"shop-{name}" for name in SERVICES}

    # Nothing personal or from the card, anywhere.
    secrets = [CARD.number, f"{username}@example.com", username, PASSWORD]
    for s in spans:
        text = s.text()
        assert not [secret for secret in secrets if secret in text], s.span.name
        assert not any(k for k in s.attributes if "card" in k or "cvc" in k), s.span.name

    _check_logs(suite, order.order_id)


def _ancestors(span: Collected, by_id: dict[str, Collected]) -> list[Collected]:
    chain = []
    while span.parent_id in by_id:
        span = by_id[span.parent_id]
        chain.append(span)
    return chain


def _check_logs(suite: Suite, order_id: str) -> None:
    """Every line written while serving a call carries a trace; those of this order, its own."""
    ours = {method for _, method in EXPECTED_CALLS} | {"/shop.order.v1.OrderService/CreateOrder"}
    lines_of_ours = 0
    for service in SERVICES:
        for line in suite.log_path(service).read_text().splitlines():
            entry = json.loads(line) if line.startswith("{") else {}
            if "rpc" not in entry:
                continue  # not written while serving a call
            assert len(entry.get("trace_id", "")) == 32, entry
            assert len(entry.get("span_id", "")) == 16, entry
            if entry["rpc"] in ours or entry.get("order_id") == order_id:
                assert entry["trace_id"] == TRACE_ID, entry
                lines_of_ours += 1
    # One line per call served at least, plus the saga's own.
    assert lines_of_ours > len(ours)
