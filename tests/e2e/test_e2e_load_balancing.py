"""Round-robin over DNS: one name, several A records, one real user-service process per record.

A DNS server on loopback (shop_cli.dns) answers for the name; gRPC's resolver asks it
because the target names it (dns://127.0.0.1:<port>/user.lb.test:<port>). Each replica
has its own data directory, holding one user named after the replica, so ListUsers
tells which replica answered.
"""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from shop.user.v1 import user_pb2, user_pb2_grpc
from shop_cli.dns import LoopbackDns
from shop_grpc.channels import open_channel
from shop_grpc.testing import ServiceProcess, free_port

NAME = "user.lb.test"
SERVICE = "shop.user.v1.UserService"
MAX_CONNECTION_AGE = 2.0
DRAIN = 3.0
# Re-resolution waits for a connection to age out, then for gRPC's own backoff.
PICKUP_SECONDS = MAX_CONNECTION_AGE + 4

pytestmark = pytest.mark.local_only  # its own replicas behind a local DNS server


@dataclass
class Cluster:
    dns: LoopbackDns
    port: int
    tmp_path: Path
    stack: AsyncExitStack
    replicas: dict[str, ServiceProcess]

    async def add(self, host: str) -> None:
        replica = ServiceProcess(
            "shop_user",
            self.tmp_path / host,
            address=f"{host}:{self.port}",
            grace=DRAIN + 2,
            env={
                "SHOP_INSTANCE_ID": f"user@{host}",
                "SHOP_MAX_CONNECTION_AGE_SECONDS": str(MAX_CONNECTION_AGE),
                "SHOP_MAX_CONNECTION_AGE_GRACE_SECONDS": "1",
                "SHOP_SHUTDOWN_DRAIN_SECONDS": str(DRAIN),
            },
        )
        await self.stack.enter_async_context(replica)
        await user_pb2_grpc.UserServiceStub(replica.channel).CreateUser(
            user_pb2.CreateUserRequest(
                user=user_pb2.User(username=_username(host), email=f"{host}@example.com"),
                password="correct horse battery",
            ),
            timeout=10,
        )
        self.replicas[host] = replica
        self.dns.set(NAME, self.replicas)


def _username(host: str) -> str:
    return "r" + host.replace(".", "-")


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    async with AsyncExitStack() as stack:
        dns = stack.enter_context(LoopbackDns())
        cluster = Cluster(dns, free_port(), tmp_path, stack, {})
        await asyncio.gather(*(cluster.add(f"127.0.0.{i}") for i in (2, 3, 4)))
        yield cluster


@pytest.fixture
async def users(cluster: Cluster) -> AsyncIterator[user_pb2_grpc.UserServiceStub]:
    channel = open_channel(cluster.dns.target(NAME, cluster.port), retry_services=[SERVICE])
    yield user_pb2_grpc.UserServiceStub(channel)
    await channel.close()


async def _who(users: user_pb2_grpc.UserServiceStub) -> str:
    reply = await users.ListUsers(user_pb2.ListUsersRequest(page_size=1), timeout=5)
    return str(reply.users[0].username)


async def _spread(users: user_pb2_grpc.UserServiceStub, calls: int) -> Counter[str]:
    return Counter([await _who(users) for _ in range(calls)])


async def test_calls_spread_over_every_replica_and_follow_changes(cluster, users) -> None:
    first = [_username(h) for h in ("127.0.0.2", "127.0.0.3", "127.0.0.4")]
    await _who(users)  # connects; round-robin then waits for every replica to be READY
    await asyncio.sleep(0.5)

    spread = await _spread(users, 300)

    assert set(spread) == set(first), spread
    assert all(spread[name] >= 60 for name in first), spread

    # A crashed replica: every call still succeeds (the retry policy covers the ones that
    # hit it while it died) and the traffic moves to the other two.
    # (DNS still lists it, as it would until the endpoint controller notices.)
    killed = cluster.replicas.pop("127.0.0.3")
    killed.process.kill()
    after_kill = await _spread(users, 100)

    assert set(after_kill) <= {first[0], first[2]}, after_kill
    assert min(after_kill[first[0]], after_kill[first[2]]) >= 30, after_kill

    # A new replica in DNS is found once the clients' connections age out.
    await cluster.add("127.0.0.5")
    newcomer = _username("127.0.0.5")
    seen: Counter[str] = Counter()
    async with asyncio.timeout(PICKUP_SECONDS):
        while seen[newcomer] < 5:
            seen.update(await _spread(users, 10))
            await asyncio.sleep(0.05)

    # A draining replica (SIGTERM: NOT_SERVING, still serving for DRAIN seconds) is dropped
    # by client-side health checking before it stops.
    draining = cluster.replicas["127.0.0.2"]
    draining.process.send_signal(signal.SIGTERM)
    await asyncio.sleep(0.5)
    during_drain = await _spread(users, 60)

    assert draining.process.returncode is None, "the drain ended before the calls"
    assert first[0] not in during_drain, during_drain
    assert set(during_drain) == {first[2], newcomer}, during_drain
