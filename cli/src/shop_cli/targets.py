"""Where each service is, and the channels and stubs to reach it."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from types import TracebackType
from typing import cast

import grpc
from google.protobuf.descriptor import ServiceDescriptor

from shop.inventory.v1 import inventory_pb2, inventory_pb2_grpc
from shop.order.v1 import order_pb2, order_pb2_grpc
from shop.payment.v1 import payment_pb2, payment_pb2_grpc
from shop.user.v1 import user_pb2, user_pb2_grpc
from shop_cli.session import bearer
from shop_cli.tls import add_tls_flags, client_tls
from shop_grpc import registry
from shop_grpc.channels import open_channel
from shop_grpc.config import Env, dependency_target

# The services the CLI's own commands talk to, from the generated code (a service's image holds
# the CLI but not the other services).
_USER = user_pb2.DESCRIPTOR.services_by_name["UserService"]
_INVENTORY = inventory_pb2.DESCRIPTOR.services_by_name["InventoryService"]
_PAYMENT = payment_pb2.DESCRIPTOR.services_by_name["PaymentService"]
_ORDER = order_pb2.DESCRIPTOR.services_by_name["OrderService"]


def _service_name(api: ServiceDescriptor) -> str:
    """The suite's name for the service serving `api`: its proto package, `user` for
    shop.user.v1.UserService (protos/shop/<service>/v1/)."""
    return api.full_name.split(".")[1]


# What `shop demo` and `shop bench` take an address for: whatever is installed beside the CLI
# (in a service's image, that service alone), they talk to all of these.
CLIENT_SERVICES: tuple[str, ...] = tuple(
    _service_name(api) for api in (_ORDER, _INVENTORY, _PAYMENT, _USER)
)


def add_target_flags(parser: argparse.ArgumentParser, *services: str) -> None:
    add_tls_flags(parser)
    for service in services:
        spec = registry.spec(service)
        fallback = f" or 127.0.0.1:{spec.default_port}" if spec else ""
        parser.add_argument(
            f"--{service}",
            dest=f"{service}_target",
            metavar="HOST:PORT",
            help=f"{service} service address (default $SHOP_{service.upper()}_TARGET{fallback})",
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

    `token`: a customer's access token, sent on every call to the order service (the only
    one with customer-facing methods); without it the calls act as the certificate's operator.
    """

    def __init__(
        self,
        args: argparse.Namespace,
        environ: Mapping[str, str] | None = None,
        token: str | None = None,
    ) -> None:
        self._args = args
        self._environ = dict(os.environ if environ is None else environ)
        self._channels: dict[str, grpc.aio.Channel] = {}
        self.token = token

    def channel(self, api: ServiceDescriptor) -> grpc.aio.Channel:
        """The channel to the service serving `api`."""
        service = _service_name(api)
        if service not in self._channels:
            target = target_of(self._args, service, self._environ)
            token = self.token if api is _ORDER else None
            self._channels[service] = open_channel(
                target,
                retry_services=[api.full_name],
                tls=client_tls(self._args, self._environ),
                server_name=service,
                interceptors=bearer(token) if token else [],
            )
        return self._channels[service]

    @property
    def users(self) -> user_pb2_grpc.UserServiceAsyncStub:
        stub = user_pb2_grpc.UserServiceStub(self.channel(_USER))
        return cast("user_pb2_grpc.UserServiceAsyncStub", stub)

    @property
    def inventory(self) -> inventory_pb2_grpc.InventoryServiceAsyncStub:
        stub = inventory_pb2_grpc.InventoryServiceStub(self.channel(_INVENTORY))
        return cast("inventory_pb2_grpc.InventoryServiceAsyncStub", stub)

    @property
    def payments(self) -> payment_pb2_grpc.PaymentServiceAsyncStub:
        stub = payment_pb2_grpc.PaymentServiceStub(self.channel(_PAYMENT))
        return cast("payment_pb2_grpc.PaymentServiceAsyncStub", stub)

    @property
    def orders(self) -> order_pb2_grpc.OrderServiceAsyncStub:
        stub = order_pb2_grpc.OrderServiceStub(self.channel(_ORDER))
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
