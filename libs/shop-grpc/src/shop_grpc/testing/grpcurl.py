"""The real grpcurl, for tests of what a reflection client sees."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from shop_grpc.certs import CA_FILE, CERT_FILE, KEY_FILE


@dataclass(frozen=True)
class GrpcurlResult:
    returncode: int
    output: str
    """stdout and stderr, interleaved as grpcurl wrote them."""


@dataclass(frozen=True)
class Grpcurl:
    """The real grpcurl (a dev tool of the workspace) as one identity, against one server.

    grpcurl = Grpcurl("127.0.0.1:50051", certs / "client", "order")
    result = await grpcurl("describe", "shop.order.v1.OrderService.CreateOrder")
    assert result.returncode == 0, result.output
    """

    address: str
    identity: Path
    """A directory holding ca.crt, tls.crt and tls.key."""
    server_name: str
    """The name the server's certificate must carry (a service's bare name)."""

    @staticmethod
    def executable() -> Path:
        """grpcurl beside this Python; AssertionError when the dev tools are not installed."""
        found = Path(sys.executable).with_name("grpcurl")
        if not found.exists():
            raise AssertionError(f"{found} missing: the workspace's dev tools are not installed")
        return found

    async def __call__(self, *args: str, flags: Sequence[str] = ()) -> GrpcurlResult:
        """``grpcurl <TLS flags> <flags> ADDRESS <args>``, e.g. ``("describe", "pkg.Svc")``
        or, with ``flags=["-d", "{}"]``, ``("pkg.Svc/Method",)``; TimeoutError after 20 s."""
        process = await asyncio.create_subprocess_exec(
            str(self.executable()),
            f"-cacert={self.identity / CA_FILE}",
            f"-cert={self.identity / CERT_FILE}",
            f"-key={self.identity / KEY_FILE}",
            f"-servername={self.server_name}",
            *flags,
            self.address,
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        # Awaited, never run blocking: the server under test may share this event loop.
        try:
            async with asyncio.timeout(20):
                output, _ = await process.communicate()
        except TimeoutError:
            process.kill()
            await process.wait()
            raise
        return GrpcurlResult(int(process.returncode or 0), output.decode(errors="replace"))
