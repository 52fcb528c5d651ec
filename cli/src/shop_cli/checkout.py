"""A Checkout session (OrderService's bidirectional stream) that reports the server's status.

A grpcio asyncio client that writes to a stream the server has already ended may be
told INTERNAL "Internal error from Core" instead of the status the server sent: the
failed write overwrites it (grpc/grpc#36066). The session therefore never writes ahead:
each message goes out only once the reply to the one before has been read, so a server
that ends the stream (INVALID_ARGUMENT for a bad line) answers that read with its real
status. Should a write still find the call over (its deadline passed, the server is
stopping), the call's final status is raised rather than the write's complaint.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc

from shop.order.v1 import order_pb2
from shop_cli.arguments import CliError


class CheckoutSession:
    """One Checkout call, driven in lock step: a message, then its reply.

    `call`: ``OrderService.Checkout(timeout=...)`` called without a request iterator,
    so that the session writes. Errors: grpc.aio.AioRpcError carrying the server's status;
    CliError if the server ends the stream without answering.
    """

    def __init__(self, call: Any) -> None:
        self.call = call

    async def set_line(self, product_id: str, quantity: int) -> order_pb2.Cart:
        """Sets a cart line (0 removes it); returns the priced cart."""
        line = order_pb2.SetCartLine(product_id=product_id, quantity=quantity)
        await self._send(order_pb2.CheckoutRequest(set_line=line))
        reply = await self._receive()
        if reply is None or not reply.HasField("cart"):
            raise CliError("the server ended the checkout without pricing the cart")
        cart: order_pb2.Cart = reply.cart
        return cart

    async def place(self, place: order_pb2.PlaceOrder) -> AsyncIterator[order_pb2.Order]:
        """Places the cart; yields the order at each change until it is final."""
        await self._send(order_pb2.CheckoutRequest(place_order=place))
        while (reply := await self._receive()) is not None:
            yield reply.order

    async def _send(self, message: order_pb2.CheckoutRequest) -> None:
        try:
            await self.call.write(message)
        except asyncio.InvalidStateError:
            # The call ended before this write: what it ended with is what to report.
            await self._raise_final_status()

    async def _receive(self) -> order_pb2.CheckoutResponse | None:
        """The next reply, None once the server has ended the stream with OK."""
        reply = await self.call.read()  # raises the server's status if it ended otherwise
        return None if reply is grpc.aio.EOF else reply

    async def _raise_final_status(self) -> None:
        code = await self.call.code()
        if code == grpc.StatusCode.OK:
            raise CliError("the server ended the checkout before it was placed")
        raise grpc.aio.AioRpcError(
            code,
            await self.call.initial_metadata(),
            await self.call.trailing_metadata(),
            await self.call.details(),
        )
