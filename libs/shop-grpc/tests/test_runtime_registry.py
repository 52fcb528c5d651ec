"""The registry: the services found through their entry points, what it refuses to find, and
the start order and tables everything else reads from it. The services here are made up (over
the suite's descriptors), so nothing depends on which services the suite has."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import pytest

from shop.inventory.v1 import inventory_pb2
from shop.order.v1 import order_pb2
from shop.payment.v1 import payment_pb2
from shop.user.v1 import user_pb2
from shop_grpc import registry
from shop_grpc.registry import CLIENT, ServiceSpec
from shop_grpc.testing import generated_services

ACCOUNTS = ServiceSpec("accounts", 50054, user_pb2.DESCRIPTOR.services_by_name["UserService"], {})
BILLING = ServiceSpec(
    "billing",
    50053,
    payment_pb2.DESCRIPTOR.services_by_name["PaymentService"],
    {"Charge": ("storefront",)},
)
STOCK = ServiceSpec(
    "stock",
    50052,
    inventory_pb2.DESCRIPTOR.services_by_name["InventoryService"],
    {},
    depends_on=("accounts",),
)
STOREFRONT = ServiceSpec(
    "storefront",
    50051,
    order_pb2.DESCRIPTOR.services_by_name["OrderService"],
    {"GetOrder": (CLIENT,)},
    depends_on=("accounts", "stock", "billing"),
)


@dataclass(frozen=True)
class EntryPoint:
    """What registry reads of an importlib.metadata entry point."""

    name: str
    loaded: object

    @property
    def value(self) -> str:
        return f"shop_{self.name}.spec:SPEC"

    def load(self) -> object:
        return self.loaded


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[EntryPoint]]:
    """The entry points registry finds: the test fills the list. Its caches are cleared before
    and after, so neither the installed suite nor the test's leaks into another test."""
    points: list[EntryPoint] = []

    def entry_points(*, group: str) -> list[EntryPoint]:
        assert group == registry.ENTRY_POINT_GROUP
        return points

    monkeypatch.setattr(registry, "entry_points", entry_points)
    registry.services.cache_clear()
    registry.policy.cache_clear()
    yield points
    registry.services.cache_clear()
    registry.policy.cache_clear()


def install(points: list[EntryPoint], *specs: ServiceSpec) -> None:
    points.extend(EntryPoint(spec.name, spec) for spec in specs)


def test_services_are_found_by_entry_point_and_kept_in_the_order_of_their_ports(installed):
    install(installed, ACCOUNTS, BILLING, STOREFRONT, STOCK)

    assert registry.names() == ("storefront", "stock", "billing", "accounts")
    assert registry.identities() == ("storefront", "stock", "billing", "accounts", "client")
    assert registry.spec("billing") is BILLING
    assert registry.spec("freight") is None


def test_nothing_installed_is_an_empty_suite(installed):
    assert registry.names() == ()
    assert registry.start_order() == ()
    assert registry.identities() == (CLIENT,)


@pytest.mark.parametrize("name", ["order-v2", "order_v2", "Order", "2fa"])
def test_a_name_its_package_variables_or_kubernetes_names_cannot_hold_is_refused(installed, name):
    install(installed, replace(BILLING, name=name))

    with pytest.raises(ValueError, match="lower-case letters and digits"):
        registry.services()


def test_two_services_of_one_name_are_refused(installed):
    install(installed, ACCOUNTS, replace(BILLING, name="accounts"))

    with pytest.raises(ValueError, match="two services are named accounts"):
        registry.services()


def test_two_services_on_one_default_port_are_refused(installed):
    install(installed, ACCOUNTS, replace(BILLING, default_port=ACCOUNTS.default_port))

    with pytest.raises(ValueError, match="share a default port"):
        registry.services()


@pytest.mark.parametrize(
    "point",
    [EntryPoint("billings", BILLING), EntryPoint("billing", "not a spec")],
    ids=["named-otherwise", "not-a-spec"],
)
def test_an_entry_point_that_is_not_its_own_services_spec_is_refused(installed, point):
    installed.append(point)

    with pytest.raises(ValueError, match=f"entry point {point.name} = shop_{point.name}"):
        registry.services()


def test_each_service_starts_after_those_it_calls(installed):
    install(installed, STOREFRONT, STOCK, BILLING, ACCOUNTS)

    order = registry.start_order()

    assert sorted(order) == sorted(registry.names())
    for spec in (STOREFRONT, STOCK, BILLING, ACCOUNTS):
        for dependency in spec.depends_on:
            assert order.index(dependency) < order.index(spec.name), (dependency, spec.name)


def test_a_dependency_that_is_not_installed_does_not_hold_up_the_start(installed):
    install(installed, STOREFRONT, BILLING)

    assert registry.start_order() == ("billing", "storefront")


def test_services_that_depend_on_each_other_in_a_cycle_are_refused(installed):
    install(installed, replace(ACCOUNTS, depends_on=("storefront",)), STOCK, STOREFRONT, BILLING)

    with pytest.raises(ValueError, match="cycle"):
        registry.start_order()


def test_the_policy_table_is_every_spec_callers_by_proto_service_name(installed):
    install(installed, STOREFRONT, BILLING)

    assert registry.policy() == {
        "shop.order.v1.OrderService": {"GetOrder": (CLIENT,)},
        "shop.payment.v1.PaymentService": {"Charge": ("storefront",)},
    }
    assert STOREFRONT.full_name == "shop.order.v1.OrderService"
    assert (STOREFRONT.main_module, replace(STOREFRONT, module="elsewhere").main_module) == (
        "shop_storefront",
        "elsewhere",
    )


def test_the_policy_names_exactly_the_methods_of_the_api():
    # The API as generated from protos/, found without the registry: a proto whose service
    # declares no spec, or an RPC without a caller rule, fails here.
    api = {
        service.full_name: {method.name for method in service.methods}
        for service in generated_services()
    }
    assert {name: set(methods) for name, methods in registry.policy().items()} == api
