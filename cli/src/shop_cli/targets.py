"""Where each service is, and the channels and stubs to reach it."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from types import TracebackType
from typing import cast

import grpc

from shop.inventory.v1 import inventory_pb2_grpc
from shop.order.v1 import order_pb2_grpc
from shop.payment.v1 import payment_pb2_grpc
from shop.user.v1 import user_pb2_grpc
from shop_cli.tls import add_tls_flags, client_tls
from shop_grpc.channels import open_channel
from shop_grpc.config import DEFAULT_PORTS, Env, dependency_target

SERVICE_NAMES = {
    "order": "shop.order.v1.OrderService",
    "inventory": "shop.inventory.v1.InventoryService",
    "payment": "shop.payment.v1.PaymentService",
    "user": "shop.user.v1.UserService",
}


def add_target_flags(parser: argparse.ArgumentParser, *services: str) -> None:
    add_tls_flags(parser)
    for service in services:
        parser.add_argument(
            f"--{service}",
            dest=f"{service}_target",
            metavar="HOST:PORT",
            help=f"{service} service address (default $SHOP_{service.upper()}_TARGET "
            f"or 127.0.0.1:{DEFAULT_PORTS[service]})",
        )


def target_of(
    args: argparse.Namespace, service: str, environ: Mapping[str, str] | None = None
) -> str:
    flag = getattr(args, f"{service}_target", None)
    return str(flag) if flag else dependency_target(Env(environ), service)


class Clients:
    """Lazily opened channels, one per service, closed together; stubs typed as async.

    Every call the CLI makes is a read or carries a request_id, so each
    service's methods may be retried on UNAVAILABLE by the channel.
    """

    def __init__(self, args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> None:
        self._args = args
        self._environ = dict(os.environ if environ is None else environ)
        self._channels: dict[str, grpc.aio.Channel] = {}

    def channel(self, service: str) -> grpc.aio.Channel:
        if service not in self._channels:
            target = target_of(self._args, service, self._environ)
            self._channels[service] = open_channel(
                target,
                retry_services=[SERVICE_NAMES[service]],
                tls=client_tls(self._args, self._environ),
                server_name=service,
            )
        return self._channels[service]

    @property
    def users(self) -> user_pb2_grpc.UserServiceAsyncStub:
        stub = user_pb2_grpc.UserServiceStub(self.channel("user"))
        return cast("user_pb2_grpc.UserServiceAsyncStub", stub)

    @property
    def inventory(self) -> inventory_pb2_grpc.InventoryServiceAsyncStub:
        stub = inventory_pb2_grpc.InventoryServiceStub(self.channel("inventory"))
        return cast("inventory_pb2_grpc.InventoryServiceAsyncStub", stub)

    @property
    def payments(self) -> payment_pb2_grpc.PaymentServiceAsyncStub:
        stub = payment_pb2_grpc.PaymentServiceStub(self.channel("payment"))
        return cast("payment_pb2_grpc.PaymentServiceAsyncStub", stub)

    @property
    def orders(self) -> order_pb2_grpc.OrderServiceAsyncStub:
        stub = order_pb2_grpc.OrderServiceStub(self.channel("order"))
        return cast("order_pb2_grpc.OrderServiceAsyncStub", stub)

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()

    async def __aenter__(self) -> Clients:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
