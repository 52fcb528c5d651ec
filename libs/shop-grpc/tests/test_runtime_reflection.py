"""Server reflection as clients use it: every symbol resolves, on v1 and v1alpha, over mTLS.

grpcurl 1.8.6 speaks only v1alpha (it has no flag to choose v1), so v1 is checked with
a client built from the v1 descriptor the server itself serves.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import grpc
import pytest
from google.api import annotations_pb2
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_reflection.v1alpha import reflection_pb2

from shop.order.v1 import order_pb2, order_pb2_grpc
from shop_grpc import reflection
from shop_grpc.credentials import channel_credentials, read_material
from shop_grpc.server import Registration
from shop_grpc.testing import Grpcurl, MtlsServing, serving_mtls

ORDERS = "shop.order.v1.OrderService"
ORDER_FILE = "shop/order/v1/order.proto"

# Symbol -> the file a client must be given for it: every kind grpcurl may ask for.
SYMBOLS = {
    ORDERS: ORDER_FILE,  # service
    f"{ORDERS}.CreateOrder": ORDER_FILE,  # method: grpc/grpc#34743
    "shop.order.v1.CreateOrderRequest": ORDER_FILE,  # message
    "google.protobuf.DescriptorProto.ExtensionRange": "google/protobuf/descriptor.proto",
    "shop.order.v1.Order.Status": ORDER_FILE,  # nested enum
    "shop.order.v1.Order.Status.STATUS_CONFIRMED": ORDER_FILE,  # enum value, as grpcurl asks
    "shop.order.v1.Order.STATUS_CONFIRMED": ORDER_FILE,  # enum value, protobuf's scoping
    "shop.order.v1.Order.status": ORDER_FILE,  # field
    "google.api.http": "google/api/annotations.proto",  # extension
    "grpc.health.v1.Health.Check": "grpc_health/v1/health.proto",
    f"{reflection.V1_SERVICE}.ServerReflectionInfo": reflection.V1_FILE,
    f"{reflection.V1ALPHA_SERVICE}.ServerReflectionInfo": (
        reflection_pb2.DESCRIPTOR.name  # grpc_reflection/v1alpha/reflection.proto
    ),
}
assert annotations_pb2  # imported for its extension: the pool knows what is imported


def order_registration() -> Registration:
    # Reflection describes a service from its descriptors: no method is called here.
    servicer = order_pb2_grpc.OrderServiceServicer()
    return Registration(
        ORDERS, lambda server: order_pb2_grpc.add_OrderServiceServicer_to_server(servicer, server)
    )


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[MtlsServing]:
    async with serving_mtls(tmp_path, "order", [order_registration()]) as serving:
        yield serving


def channel_as(running: MtlsServing, identity: str) -> grpc.aio.Channel:
    return grpc.aio.secure_channel(
        running.address,
        channel_credentials(read_material(running.certs / identity)),
        options=[("grpc.ssl_target_name_override", "order")],
    )


def grpcurl(running: MtlsServing, identity: str = "client") -> Grpcurl:
    return Grpcurl(running.address, running.certs / identity, "order")


async def ask(
    channel: grpc.aio.Channel,
    service: str,
    requests: Sequence[reflection_pb2.ServerReflectionRequest],
) -> list[reflection_pb2.ServerReflectionResponse]:
    """One ServerReflectionInfo stream on `service` (v1 or v1alpha): one reply per request."""
    info = channel.stream_stream(
        f"/{service}/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    return [reply async for reply in info(iter(requests), timeout=10)]


def files_of(reply: reflection_pb2.ServerReflectionResponse) -> list[str]:
    """The file names in a reply, after checking they build a pool on their own."""
    protos = [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in reply.file_descriptor_response.file_descriptor_proto
    ]
    pool = descriptor_pool.DescriptorPool()
    pending = {p.name: p for p in protos}
    # Every dependency must be in the reply: a client gets no second chance to ask.
    while pending:
        ready = [p for p in pending.values() if all(d not in pending for d in p.dependency)]
        assert ready, f"a dependency cycle or gap among {sorted(pending)}"
        for proto in ready:
            pool.Add(proto)
            del pending[proto.name]
    return [p.name for p in protos]


@pytest.mark.parametrize("service", reflection.SERVICE_NAMES)
async def test_every_kind_of_symbol_resolves_to_its_file_with_its_dependencies(running, service):
    requests = [reflection_pb2.ServerReflectionRequest(file_containing_symbol=s) for s in SYMBOLS]
    async with channel_as(running, "client") as channel:
        replies = await ask(channel, service, requests)
    found = {r.original_request.file_containing_symbol: files_of(r)[0] for r in replies}
    assert found == SYMBOLS


@pytest.mark.parametrize("service", reflection.SERVICE_NAMES)
async def test_unknown_symbols_files_and_extensions_are_not_found_and_known_ones_are(
    running, service
):
    http = annotations_pb2.http.number
    requests = [
        reflection_pb2.ServerReflectionRequest(file_containing_symbol=f"{ORDERS}.NoSuchMethod"),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="shop.order.v1.Order.NOPE"),
        reflection_pb2.ServerReflectionRequest(file_by_filename="shop/common/v1/money.proto"),
        reflection_pb2.ServerReflectionRequest(file_by_filename="no/such.proto"),
        reflection_pb2.ServerReflectionRequest(
            file_containing_extension=reflection_pb2.ExtensionRequest(
                containing_type="google.protobuf.MethodOptions", extension_number=http
            )
        ),
        reflection_pb2.ServerReflectionRequest(
            all_extension_numbers_of_type="google.protobuf.MethodOptions"
        ),
    ]
    async with channel_as(running, "client") as channel:
        replies = await ask(channel, service, requests)
    not_found = grpc.StatusCode.NOT_FOUND.value[0]
    assert [r.error_response.error_code for r in replies[:2]] == [not_found, not_found]
    # The file first, then what it imports, so a client can build it in one go.
    assert files_of(replies[2])[0] == "shop/common/v1/money.proto"
    assert "buf/validate/validate.proto" in files_of(replies[2])
    assert replies[3].error_response.error_code == not_found
    assert files_of(replies[4])[0] == "google/api/annotations.proto"
    assert http in replies[5].all_extension_numbers_response.extension_number


async def test_both_versions_are_listed_to_any_identity_of_the_ca(running):
    listing = reflection_pb2.ServerReflectionRequest(list_services="")
    # `payment` may call nothing on the order service, yet reflection is open to it.
    async with channel_as(running, "payment") as channel:
        replies = [await ask(channel, service, [listing]) for service in reflection.SERVICE_NAMES]
    for [reply] in replies:
        assert {s.name for s in reply.list_services_response.service} == {
            ORDERS,
            "grpc.health.v1.Health",
            reflection.V1_SERVICE,
            reflection.V1ALPHA_SERVICE,
        }


async def test_a_client_built_from_the_served_v1_descriptor_speaks_the_upstream_protocol(
    running,
):
    question = reflection_pb2.ServerReflectionRequest(file_by_filename=reflection.V1_FILE)
    async with channel_as(running, "client") as channel:
        [reply] = await ask(channel, reflection.V1ALPHA_SERVICE, [question])
        served = descriptor_pb2.FileDescriptorProto.FromString(
            reply.file_descriptor_response.file_descriptor_proto[0]
        )
        assert served.package == "grpc.reflection.v1"
        [method] = served.service[0].method
        assert (method.name, method.client_streaming, method.server_streaming) == (
            "ServerReflectionInfo",
            True,
            True,
        )
        # Field numbers of grpc/reflection/v1/reflection.proto upstream: the wire contract.
        numbers = {(m.name, f.name): f.number for m in served.message_type for f in m.field}
        assert {
            ("ServerReflectionRequest", "host"): 1,
            ("ServerReflectionRequest", "file_containing_symbol"): 4,
            ("ServerReflectionRequest", "list_services"): 7,
            ("ServerReflectionResponse", "original_request"): 2,
            ("ServerReflectionResponse", "file_descriptor_response"): 4,
            ("ServerReflectionResponse", "list_services_response"): 6,
            ("ServerReflectionResponse", "error_response"): 7,
        }.items() <= numbers.items()

        pool = descriptor_pool.DescriptorPool()
        pool.Add(served)
        request_type = message_factory.GetMessageClass(
            pool.FindMessageTypeByName(method.input_type.lstrip("."))
        )
        response_type = message_factory.GetMessageClass(
            pool.FindMessageTypeByName(method.output_type.lstrip("."))
        )
        info = channel.stream_stream(
            f"/{reflection.V1_SERVICE}/ServerReflectionInfo",
            request_serializer=request_type.SerializeToString,
            response_deserializer=response_type.FromString,
        )
        ask_v1 = request_type(file_containing_symbol=f"{ORDERS}.GetOrder")
        [answer] = [r async for r in info(iter([ask_v1]), timeout=10)]
    first = descriptor_pb2.FileDescriptorProto.FromString(
        answer.file_descriptor_response.file_descriptor_proto[0]
    )
    assert first.name == ORDER_FILE
    assert "GetOrder" in {m.name for m in first.service[0].method}


# -- grpcurl, the reference client ---------------------------------------------------


async def test_grpcurl_lists_and_describes_a_service_a_method_a_message_and_an_enum(running):
    run = grpcurl(running)
    listed = await run("list")
    assert listed.returncode == 0, listed.output
    assert listed.output.split() == sorted(
        [ORDERS, "grpc.health.v1.Health", reflection.V1_SERVICE, reflection.V1ALPHA_SERVICE]
    )
    methods = await run("list", ORDERS)
    assert methods.output.split() == sorted(
        f"{ORDERS}.{m.name}" for m in order_pb2.DESCRIPTOR.services_by_name["OrderService"].methods
    )

    expected = {
        ORDERS: f"{ORDERS} is a service:",
        # The example: "Symbol not found" before.
        f"{ORDERS}.CreateOrder": "rpc CreateOrder ( .shop.order.v1.CreateOrderRequest ) "
        "returns ( .shop.order.v1.Order );",
        "shop.order.v1.CreateOrderRequest": "shop.order.v1.CreateOrderRequest is a message:",
        "shop.order.v1.Order.Status": "STATUS_CONFIRMED = 2;",
        "shop.order.v1.Order.Status.STATUS_CONFIRMED": "is an enum value:",
        reflection.V1_SERVICE: "rpc ServerReflectionInfo ( stream "
        ".grpc.reflection.v1.ServerReflectionRequest ) returns ( stream "
        ".grpc.reflection.v1.ServerReflectionResponse );",
    }
    for symbol, line in expected.items():
        described = await run("describe", symbol)
        assert described.returncode == 0 and line in described.output, (symbol, described.output)


async def test_grpcurl_calls_through_reflection_with_any_identity(running):
    body = '{"service": "shop.order.v1.OrderService"}'
    called = await grpcurl(running, "user")("grpc.health.v1.Health/Check", flags=["-d", body])
    assert called.returncode == 0, called.output
    assert '"status": "SERVING"' in called.output
