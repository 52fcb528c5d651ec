"""Customers over mTLS: a call with an access token acts for its customer only, through every
RPC; the operator's certificate without a token acts for anyone; nothing else gets in."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from opentelemetry.trace import SpanKind

from shop.common.v1 import money_pb2
from shop.order.v1 import order_pb2, order_pb2_grpc
from shop.payment.v1 import payment_pb2
from shop_grpc import tokens
from shop_grpc.channels import open_channel
from shop_grpc.config import TlsSettings
from shop_grpc.testing import (
    TokenKeys,
    bearer,
    id_for,
    make_token_keys,
    rpc_fails,
    serving_mtls,
)
from shop_order.entrypoints.grpc import registration

ALICE, BOB = id_for("alice"), id_for("bob")
CARD = payment_pb2.PaymentCard(number="4242424242424242", exp_month=12, exp_year=2040, cvc="123")
LINES = [money_pb2.LineItem(product_id="widget", quantity=1)]


@dataclass
class Shop:
    address: str
    certs: Path
    keys: TokenKeys
    channels: list[grpc.aio.Channel]

    def stub(self, identity: str = "client") -> order_pb2_grpc.OrderServiceStub:
        channel = open_channel(
            self.address, tls=TlsSettings(self.certs / identity), server_name="order"
        )
        self.channels.append(channel)
        return order_pb2_grpc.OrderServiceStub(channel)

    def as_user(self, user_id: str) -> tuple[tuple[str, str]]:
        return bearer(self.keys.token_for(user_id))


@pytest.fixture
async def shop(tmp_path: Path, assemble_order, world) -> AsyncIterator[Shop]:
    world.users.known.update({ALICE, BOB})
    keys = make_token_keys(tmp_path / "keys")
    async with (
        assemble_order(2) as (_, app),
        serving_mtls(
            tmp_path, "order", [registration(app.servicer)], tokens=keys.verifier()
        ) as serving,
    ):
        shop = Shop(serving.address, serving.certs, keys, [])
        yield shop
        for channel in shop.channels:
            await channel.close()


async def place(shop: Shop, user_id: str, stub=None) -> order_pb2.Order:
    stub = stub or shop.stub()
    request = order_pb2.CreateOrderRequest(user_id=user_id, lines=LINES, card=CARD)
    return await stub.CreateOrder(request, metadata=shop.as_user(user_id), timeout=5)


# -- each customer sees and acts on their own orders only -----------------------------------


async def test_a_customer_places_reads_lists_and_watches_their_own_order(shop):
    stub = shop.stub()
    alice = shop.as_user(ALICE)

    order = await place(shop, ALICE, stub)
    got = await stub.GetOrder(order_pb2.GetOrderRequest(order_id=order.order_id), metadata=alice)
    listed = await stub.ListOrders(order_pb2.ListOrdersRequest(user_id=ALICE), metadata=alice)
    watched = [
        o
        async for o in stub.WatchOrder(
            order_pb2.WatchOrderRequest(order_id=order.order_id), metadata=alice, timeout=5
        )
    ]

    assert order.user_id == ALICE and order.status == order_pb2.Order.STATUS_CONFIRMED
    assert got == order
    assert [o.order_id for o in listed.orders] == [order.order_id]
    assert watched[-1].status == order_pb2.Order.STATUS_CONFIRMED


async def test_another_customers_order_is_not_found_to_get_watch_or_cancel(shop):
    stub = shop.stub()
    bob = shop.as_user(BOB)
    alices = await place(shop, ALICE)
    missing = id_for("no such order")

    for order_id in (alices.order_id, missing):  # the same answer: ids cannot be probed
        with rpc_fails(grpc.StatusCode.NOT_FOUND):
            await stub.GetOrder(order_pb2.GetOrderRequest(order_id=order_id), metadata=bob)
        with rpc_fails(grpc.StatusCode.NOT_FOUND):
            await stub.CancelOrder(order_pb2.CancelOrderRequest(order_id=order_id), metadata=bob)
        with rpc_fails(grpc.StatusCode.NOT_FOUND):
            async for _ in stub.WatchOrder(
                order_pb2.WatchOrderRequest(order_id=order_id), metadata=bob, timeout=5
            ):
                pass

    alice = shop.as_user(ALICE)
    still = await stub.GetOrder(order_pb2.GetOrderRequest(order_id=alices.order_id), metadata=alice)
    assert still.status == order_pb2.Order.STATUS_CONFIRMED  # Bob's cancel changed nothing


async def test_a_customer_cannot_list_or_order_for_another_user(shop, world):
    stub = shop.stub()
    bob = shop.as_user(BOB)
    await place(shop, ALICE)

    methods_before = len(world.payments.methods)

    with rpc_fails(grpc.StatusCode.PERMISSION_DENIED, reason="OTHER_CUSTOMER"):
        await stub.ListOrders(order_pb2.ListOrdersRequest(user_id=ALICE), metadata=bob)
    with rpc_fails(grpc.StatusCode.PERMISSION_DENIED, reason="OTHER_CUSTOMER"):
        await stub.CreateOrder(
            order_pb2.CreateOrderRequest(user_id=ALICE, lines=LINES, card=CARD), metadata=bob
        )

    assert len(world.payments.methods) == methods_before  # refused before the card was used
    alice = shop.as_user(ALICE)
    alices = await stub.ListOrders(order_pb2.ListOrdersRequest(user_id=ALICE), metadata=alice)
    assert len(alices.orders) == 1
    listed = await stub.ListOrders(order_pb2.ListOrdersRequest(user_id=BOB), metadata=bob)
    assert list(listed.orders) == []


async def test_checkout_places_only_for_the_signed_in_customer(shop):
    stub = shop.stub()

    async def checkout(user_id: str, token_user: str) -> list[order_pb2.CheckoutResponse]:
        requests = [
            order_pb2.CheckoutRequest(
                set_line=order_pb2.SetCartLine(product_id="widget", quantity=1)
            ),
            order_pb2.CheckoutRequest(place_order=order_pb2.PlaceOrder(user_id=user_id, card=CARD)),
        ]
        call = stub.Checkout(iter(requests), metadata=shop.as_user(token_user), timeout=5)
        return [response async for response in call]

    mine = await checkout(ALICE, ALICE)
    with rpc_fails(grpc.StatusCode.PERMISSION_DENIED, reason="OTHER_CUSTOMER"):
        await checkout(ALICE, BOB)

    assert mine[-1].order.user_id == ALICE
    assert mine[-1].order.status == order_pb2.Order.STATUS_CONFIRMED


async def test_a_token_acts_as_its_customer_whatever_certificate_carries_it(shop):
    alices = await place(shop, ALICE)
    as_operator = shop.stub("client")

    with rpc_fails(grpc.StatusCode.NOT_FOUND):
        await as_operator.GetOrder(
            order_pb2.GetOrderRequest(order_id=alices.order_id), metadata=shop.as_user(BOB)
        )
    # A service's certificate, which the policy names for none of these methods, with a token.
    got = await shop.stub("payment").GetOrder(
        order_pb2.GetOrderRequest(order_id=alices.order_id), metadata=shop.as_user(ALICE)
    )
    assert got.order_id == alices.order_id


# -- operators and services ------------------------------------------------------------------


async def test_the_operator_without_a_token_acts_on_any_order(shop):
    operator = shop.stub("client")
    alices = await place(shop, ALICE)

    got = await operator.GetOrder(order_pb2.GetOrderRequest(order_id=alices.order_id))
    listed = await operator.ListOrders(order_pb2.ListOrdersRequest(user_id=ALICE))
    bobs = await operator.CreateOrder(
        order_pb2.CreateOrderRequest(user_id=BOB, lines=LINES, card=CARD), timeout=5
    )

    assert got.order_id == alices.order_id
    assert [o.order_id for o in listed.orders] == [alices.order_id]
    assert bobs.user_id == BOB


async def test_another_identity_without_a_token_is_unauthenticated(shop):
    alices = await place(shop, ALICE)

    with rpc_fails(grpc.StatusCode.UNAUTHENTICATED, reason="NO_TOKEN") as failure:
        await shop.stub("payment").GetOrder(order_pb2.GetOrderRequest(order_id=alices.order_id))

    assert dict(failure.rpc_error.trailing_metadata() or ())["www-authenticate"] == "Bearer"


# -- tokens that do not hold ---------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer",
        "Bearer ",
        "Basic YWxpY2U6cGFzc3dvcmQ=",
        "Bearer not-a-token",
        "Bearer a.b.c",
        "Bearer "
        + _b64(json.dumps({"alg": "none", "kid": "20260101T000000Z"}).encode())
        + "."
        + _b64(json.dumps({"sub": ALICE}).encode())
        + ".",
    ],
    ids=["no-token", "empty-token", "basic", "garbage", "three-parts", "alg-none"],
)
async def test_a_bad_authorization_is_unauthenticated_even_from_the_operator(shop, authorization):
    alices = await place(shop, ALICE)

    with rpc_fails(grpc.StatusCode.UNAUTHENTICATED, reason="TOKEN_INVALID") as failure:
        await shop.stub("client").GetOrder(
            order_pb2.GetOrderRequest(order_id=alices.order_id),
            metadata=(("authorization", authorization),),
        )
    credentials = authorization.partition(" ")[2].strip()
    assert not credentials or credentials not in failure.details  # never echoed back
    challenge = dict(failure.rpc_error.trailing_metadata() or ())["www-authenticate"]
    assert challenge == 'Bearer error="invalid_token"'


async def test_a_binary_authorization_is_unauthenticated_not_the_operator_acting(shop):
    alices = await place(shop, ALICE)
    token = shop.keys.token_for(BOB)

    with rpc_fails(grpc.StatusCode.UNAUTHENTICATED):
        await shop.stub("client").GetOrder(
            order_pb2.GetOrderRequest(order_id=alices.order_id),
            metadata=(("authorization-bin", f"Bearer {token}".encode()),),
        )


async def test_a_token_signed_by_a_removed_key_is_unauthenticated(shop):
    alices = await place(shop, ALICE)
    old = shop.as_user(ALICE)
    shop.keys.rotate("20270101T000000Z")
    new = shop.as_user(ALICE)
    await asyncio.sleep(1.1)  # KeyDirectory looks at its files at most once a second
    stub = shop.stub()
    request = order_pb2.GetOrderRequest(order_id=alices.order_id)

    assert (await stub.GetOrder(request, metadata=old)).order_id == alices.order_id
    assert (await stub.GetOrder(request, metadata=new)).order_id == alices.order_id

    (shop.keys.public / "20260101T000000Z.pem").unlink()
    await asyncio.sleep(1.1)

    with rpc_fails(grpc.StatusCode.UNAUTHENTICATED):
        await stub.GetOrder(request, metadata=old)
    assert (await stub.GetOrder(request, metadata=new)).order_id == alices.order_id


async def test_logs_name_the_customer_and_never_hold_the_token(shop, capsys):
    token = shop.keys.token_for(ALICE)
    stub = shop.stub("payment")
    request = order_pb2.CreateOrderRequest(user_id=ALICE, lines=LINES, card=CARD)
    capsys.readouterr()

    await stub.CreateOrder(request, metadata=bearer(token), timeout=5)
    with rpc_fails(grpc.StatusCode.UNAUTHENTICATED):
        await stub.ListOrders(
            order_pb2.ListOrdersRequest(user_id=ALICE), metadata=bearer(token + "x")
        )

    logged = capsys.readouterr().out
    assert f"user_id={ALICE}" in logged
    assert f"token_id={tokens.verify(tokens.read_ring(shop.keys.public), token).token_id}" in logged
    assert "unauthenticated" in logged
    assert token.split(".")[2] not in logged and token.split(".")[1] not in logged


async def test_spans_name_the_customer_and_never_hold_the_token(traced, shop):
    token = shop.keys.token_for(ALICE)
    alices = await place(shop, ALICE)

    await shop.stub().GetOrder(
        order_pb2.GetOrderRequest(order_id=alices.order_id), metadata=bearer(token)
    )

    spans = traced.spans()
    served = [
        s
        for s in spans
        if s.name == "/shop.order.v1.OrderService/GetOrder" and s.kind == SpanKind.SERVER
    ]
    assert served and served[-1].attributes["enduser.id"] == ALICE
    for span in spans:
        recorded = repr(dict(span.attributes or {})) + repr([e.attributes for e in span.events])
        assert token not in recorded and token.split(".")[2] not in recorded
