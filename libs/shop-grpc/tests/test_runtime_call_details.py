"""rewriting (shop_grpc.call_details): every shape of call is sent with the details the
rewrite makes of its own."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from shop_grpc.call_details import rewriting
from shop_grpc.server import Registration

SERVICE = "test.Tagged"


def _tag(context: grpc.aio.ServicerContext) -> bytes:
    return dict(context.invocation_metadata()).get("x-tag", "").encode()


async def _unary(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return _tag(context)


async def _server_stream(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    yield _tag(context)


async def _client_stream(
    requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
) -> bytes:
    return _tag(context)


async def _bidi(
    requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
) -> AsyncIterator[bytes]:
    yield _tag(context)


def _tagged() -> Registration:
    generic = grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Unary": grpc.unary_unary_rpc_method_handler(_unary),
            "ServerStream": grpc.unary_stream_rpc_method_handler(_server_stream),
            "ClientStream": grpc.stream_unary_rpc_method_handler(_client_stream),
            "Bidi": grpc.stream_stream_rpc_method_handler(_bidi),
        },
    )
    return Registration(SERVICE, lambda server: server.add_generic_rpc_handlers([generic]))


def _with_tag(details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
    return details._replace(metadata=grpc.aio.Metadata(("x-tag", "rewritten")))


@pytest.mark.parametrize("method", ["Unary", "ServerStream", "ClientStream", "Bidi"])
async def test_every_shape_of_call_is_sent_with_the_rewritten_details(
    loopback, method: str
) -> None:
    rewritten = rewriting(_with_tag)
    async with (
        loopback.serving(_tagged()) as address,
        grpc.aio.insecure_channel(address, interceptors=rewritten) as ch,
    ):
        path = f"/{SERVICE}/{method}"
        if method == "Unary":
            answers = [await ch.unary_unary(path)(b"", timeout=5)]
        elif method == "ServerStream":
            answers = [a async for a in ch.unary_stream(path)(b"", timeout=5)]
        elif method == "ClientStream":
            answers = [await ch.stream_unary(path)(iter([b""]), timeout=5)]
        else:
            answers = [a async for a in ch.stream_stream(path)(iter([b""]), timeout=5)]
    assert answers == [b"rewritten"]
