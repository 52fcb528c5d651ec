"""What several of the runtime's test files share: the kit's fixtures, and a stand-in payment
service served with mTLS (``running``) with the helpers that call it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from shop_grpc.channels import open_channel
from shop_grpc.config import TlsSettings
from shop_grpc.server import Registration
from shop_grpc.testing import MtlsServing, database_url, db, serving_mtls, traced  # noqa: F401

PAYMENTS = "shop.payment.v1.PaymentService"
NAMESPACE = "test"


@dataclass
class SpyPayments:
    """Stands in for the payment service: records which handlers ran."""

    ran: list[str] = field(default_factory=list)
    callers: list[str] = field(default_factory=list)
    delay: float = 0.0

    def registration(self) -> Registration:
        def handler(name: str) -> grpc.RpcMethodHandler:
            async def behave(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
                self.ran.append(name)
                self.callers.append(context.auth_context()["peer_spiffe_id"][0].decode())
                await asyncio.sleep(self.delay)
                return b""

            return grpc.unary_unary_rpc_method_handler(behave)

        generic = grpc.method_handlers_generic_handler(
            PAYMENTS, {name: handler(name) for name in ("Charge", "ListPayments")}
        )
        return Registration(PAYMENTS, lambda server: server.add_generic_rpc_handlers([generic]))


@dataclass(frozen=True)
class Running(MtlsServing):
    spy: SpyPayments = field(default_factory=SpyPayments)

    def channel(self, identity: str = "client") -> grpc.aio.Channel:
        return open_channel(
            self.address, tls=TlsSettings(self.certs / identity), server_name="payment"
        )


@pytest.fixture
def namespace() -> str:
    """The namespace of `running`'s certificates."""
    return NAMESPACE


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    """The stand-in payment service, as `payment`, with certificates for every identity."""
    spy = SpyPayments()
    async with serving_mtls(tmp_path, "payment", [spy.registration()], NAMESPACE) as serving:
        yield Running(serving.server, serving.certs, serving.authority, spy)


async def _status_of(channel: grpc.aio.Channel, method: str) -> grpc.StatusCode:
    try:
        await channel.unary_unary(f"/{PAYMENTS}/{method}")(b"", timeout=5)
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


@pytest.fixture
def status_of() -> Callable[[grpc.aio.Channel, str], Awaitable[grpc.StatusCode]]:
    """The status a call of the stand-in's `method` over `channel` ends with."""
    return _status_of


def _static_channel(directory: Path | None, ca: Path, address: str) -> grpc.aio.Channel:
    key = cert = None
    if directory is not None:
        key, cert = (directory / "tls.key").read_bytes(), (directory / "tls.crt").read_bytes()
    creds = grpc.ssl_channel_credentials(ca.read_bytes(), key, cert)
    return grpc.aio.secure_channel(
        address, creds, options=[("grpc.ssl_target_name_override", "payment")]
    )


@pytest.fixture
def static_channel() -> Callable[[Path | None, Path, str], grpc.aio.Channel]:
    """A channel to the stand-in with fixed credentials; no client certificate when the
    directory is None."""
    return _static_channel
