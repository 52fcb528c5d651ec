"""The whole suite as four processes, started the way `shop up` starts it — or, given a kube
context (`--kube-context` or SHOP_E2E_KUBE_CONTEXT), the Helm release in that cluster
(SHOP_E2E_NAMESPACE, default `default`; SHOP_E2E_RELEASE, default `shop`). Scenarios that stop
processes or read their files are marked `local_only` and skipped against a cluster."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from shop.common.v1 import money_pb2
from shop.inventory.v1 import inventory_pb2, inventory_pb2_grpc
from shop.order.v1 import order_pb2, order_pb2_grpc
from shop.payment.v1 import payment_pb2, payment_pb2_grpc
from shop.user.v1 import user_pb2, user_pb2_grpc
from shop_cli.suite import Suite, find_free_base_port
from shop_cli.targets import CLIENT_SERVICES
from shop_grpc.credentials import channel_credentials, read_material

APPROVED = payment_pb2.PaymentCard(
    number="4242424242424242", exp_month=12, exp_year=2040, cvc="123"
)
DECLINED = payment_pb2.PaymentCard(
    number="4000000000000002", exp_month=12, exp_year=2040, cvc="123"
)


def _load_cluster_backend() -> Any:
    """tests/e2e/cluster.py, importable as `shop_e2e_cluster` (tests are not a package)."""
    spec = importlib.util.spec_from_file_location("shop_e2e_cluster", CLUSTER_BACKEND)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


CLUSTER_BACKEND = Path(__file__).with_name("cluster.py")
cluster = _load_cluster_backend()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--kube-context", default=None, help="run tests/e2e against this cluster")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "local_only: needs the local suite's processes or files")


def kube_context(config: pytest.Config) -> str | None:
    return config.getoption("--kube-context", None) or os.environ.get("SHOP_E2E_KUBE_CONTEXT")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    context = kube_context(config)
    if not context:
        return
    skip = pytest.mark.skip(
        reason=f"stops processes or reads local files; cluster mode ({context})"
    )
    for item in items:
        if item.get_closest_marker("local_only"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def suite(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    data_dir = tmp_path_factory.mktemp("suite")
    context = kube_context(request.config)
    if context:
        namespace = os.environ.get("SHOP_E2E_NAMESPACE", "default")
        release = os.environ.get("SHOP_E2E_RELEASE", "shop")
        with cluster.connect(context, namespace, release, data_dir) as running:
            yield running
        return
    with Suite(data_dir, base_port=find_free_base_port()) as running:
        yield running
    # A clean stop is part of the contract: every service exits 0 on SIGTERM.


@asynccontextmanager
async def _traced_suite(data_dir: Path, otlp_endpoint: str) -> AsyncIterator[Suite]:
    suite = Suite(
        data_dir,
        base_port=find_free_base_port(),
        extra_env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_endpoint,
            "OTEL_TRACES_SAMPLER": "always_on",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        },
    )
    # Start and stop off the event loop: the receiver must keep answering meanwhile.
    await asyncio.to_thread(suite.__enter__)
    try:
        yield suite
    finally:
        codes = await asyncio.to_thread(suite.stop)
    assert set(codes.values()) == {0}, codes


@pytest.fixture
def traced_suite() -> Callable[[Path, str], AbstractAsyncContextManager[Suite]]:
    """`traced_suite(data_dir, otlp_endpoint)`: a suite of the test's own, as `shop up` runs
    it, every call traced and its spans sent to the OTLP/gRPC receiver at `otlp_endpoint` at
    once; every service must exit 0 when it stops."""
    return _traced_suite


@dataclass
class Shop:
    """Stubs for the four services plus the helpers the scenarios share."""

    orders: order_pb2_grpc.OrderServiceStub
    inventory: inventory_pb2_grpc.InventoryServiceStub
    payments: payment_pb2_grpc.PaymentServiceStub
    users: user_pb2_grpc.UserServiceStub

    async def product(self, stock: int, price_minor: int = 1000) -> str:
        product_id = f"p-{uuid.uuid4().hex[:12]}"
        await self.inventory.CreateProduct(
            inventory_pb2.CreateProductRequest(
                product=inventory_pb2.Product(
                    product_id=product_id,
                    title="Test product",
                    price=money_pb2.Money(currency_code="USD", amount_minor=price_minor),
                )
            ),
            timeout=10,
        )
        if stock:
            await self.inventory.ImportStock(
                iter(
                    [
                        inventory_pb2.ImportStockRequest(
                            request_id=str(uuid.uuid4()), product_id=product_id, quantity=stock
                        )
                    ]
                ),
                timeout=10,
            )
        return product_id

    async def user(self) -> str:
        name = f"u{uuid.uuid4().hex[:12]}"
        user = await self.users.CreateUser(
            user_pb2.CreateUserRequest(
                user=user_pb2.User(username=name, email=f"{name}@example.com"),
                password="correct horse battery",
            ),
            timeout=10,
        )
        return str(user.user_id)

    async def stock(self, product_id: str) -> inventory_pb2.StockLevel:
        return await self.inventory.GetStock(
            inventory_pb2.GetStockRequest(product_id=product_id), timeout=10
        )

    async def place(
        self,
        user_id: str,
        items: dict[str, int],
        card: payment_pb2.PaymentCard = APPROVED,
        request_id: str = "",
        deadline_seconds: float = 20,
    ) -> order_pb2.Order:
        return await self.orders.CreateOrder(
            order_pb2.CreateOrderRequest(
                user_id=user_id,
                lines=[money_pb2.LineItem(product_id=p, quantity=q) for p, q in items.items()],
                card=card,
                request_id=request_id,
            ),
            timeout=deadline_seconds,
        )

    async def payments_of(self, order_id: str) -> list[payment_pb2.Payment]:
        reply = await self.payments.ListPayments(
            payment_pb2.ListPaymentsRequest(order_id=order_id), timeout=10
        )
        return list(reply.payments)

    async def orders_of(self, user_id: str) -> list[order_pb2.Order]:
        reply = await self.orders.ListOrders(
            order_pb2.ListOrdersRequest(user_id=user_id, page_size=500), timeout=10
        )
        return list(reply.orders)


@pytest.fixture
def target_flags(suite: Suite) -> list[str]:
    """`--<service>=<address>` for each service `shop demo` and `shop bench` talk to."""
    return [
        f"--{name}={address}"
        for name, address in suite.endpoints().items()
        if name in CLIENT_SERVICES
    ]


def client_channel(suite: Suite, service: str) -> grpc.aio.Channel:
    """A bare channel presenting the `shop` CLI's client identity."""
    identity = read_material(suite.certs_dir / "client")
    return grpc.aio.secure_channel(
        suite.endpoints()[service],
        channel_credentials(identity),
        options=[("grpc.ssl_target_name_override", service)],
    )


@pytest.fixture
async def shop(suite: Suite) -> AsyncIterator[Shop]:
    channels = {name: client_channel(suite, name) for name in suite.endpoints()}
    yield Shop(
        orders=order_pb2_grpc.OrderServiceStub(channels["order"]),
        inventory=inventory_pb2_grpc.InventoryServiceStub(channels["inventory"]),
        payments=payment_pb2_grpc.PaymentServiceStub(channels["payment"]),
        users=user_pb2_grpc.UserServiceStub(channels["user"]),
    )
    for channel in channels.values():
        await channel.close()


@pytest.fixture
def data_dir(suite: Suite) -> Path:
    return suite.data_dir
