"""The kit's view of the generated API (shop_grpc.testing.api)."""

from __future__ import annotations

from shop.common.v1 import rules_pb2
from shop_grpc import registry
from shop_grpc.testing import generated_services


def test_every_generated_service_is_found_once_in_name_order():
    names = [str(service.full_name) for service in generated_services()]

    assert names == sorted(set(names))
    assert {spec.full_name for spec in registry.services().values()} <= set(names)


def test_a_proto_without_services_adds_none():
    # shop.common.v1 holds shared messages and options only.
    assert not rules_pb2.DESCRIPTOR.services_by_name
    assert all(
        not name.startswith("shop.common.")
        for name in map(str, (s.full_name for s in generated_services()))
    )
