"""Every service of the running suite is usable through reflection alone, with grpcurl."""

from __future__ import annotations

import json

import pytest
from google.protobuf import descriptor_pool

from shop_grpc import registry
from shop_grpc.testing import Grpcurl

SERVICES = {spec.name: spec.full_name for spec in registry.services().values()}


def grpcurl(suite, name: str) -> Grpcurl:
    return Grpcurl(suite.endpoints()[name], suite.certs_dir / "client", name)


@pytest.mark.parametrize("name", sorted(SERVICES))
async def test_every_method_of_every_service_is_listed_and_describable(suite, name):
    service = descriptor_pool.Default().FindServiceByName(SERVICES[name])
    methods = sorted(m.full_name for m in service.methods)
    run = grpcurl(suite, name)
    listed = await run("list", service.full_name)
    assert listed.returncode == 0, listed.output
    assert listed.output.split() == methods
    for method in service.methods:
        described = await run("describe", method.full_name)
        assert described.returncode == 0, described.output
        assert f"{method.full_name} is a method:" in described.output
        assert f"rpc {method.name} (" in described.output


async def test_grpcurl_calls_a_shop_method_through_reflection(suite, shop):
    product_id = await shop.product(stock=3, price_minor=1250)
    run = grpcurl(suite, "inventory")
    body = json.dumps({"product_id": product_id})
    called = await run("shop.inventory.v1.InventoryService/GetStock", flags=["-d", body])
    assert called.returncode == 0, called.output
    stock = json.loads(called.output)  # grpcurl prints the proto's own field names
    assert (stock["product_id"], stock["available"]) == (product_id, "3")  # int64: a string


async def test_grpcurl_shows_the_precise_status_of_a_bad_request(suite):
    run = grpcurl(suite, "order")
    body = json.dumps({"user_id": "u-1", "lines": [], "request_id": "r-1"})
    called = await run(
        "shop.order.v1.OrderService/CreateOrder", flags=["-d", body, "-format-error"]
    )
    assert called.returncode != 0
    error = json.loads(called.output)
    assert error["code"] == 3  # INVALID_ARGUMENT
    [bad_request] = [d for d in error["details"] if d["@type"].endswith("BadRequest")]
    assert {v["field"] for v in bad_request["field_violations"]} >= {"lines", "card"}
