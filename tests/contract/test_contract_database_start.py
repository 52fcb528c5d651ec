"""Every service's start while its database is away, checked for each one the registry finds:
the probe port first, NOT_SERVING with liveness SERVING, tries again, serves once the database
answers, stops cleanly meanwhile, and never logs the database's password."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator

import grpc
import pytest
from grpc_health.v1 import health_pb2
from sqlalchemy.engine import make_url

from shop_grpc import registry
from shop_grpc.probe import LIVENESS
from shop_grpc.testing import ServiceProcess, free_port, postgres_database, postgres_server_url

SPECS = list(registry.services().values())
IDS = [spec.name for spec in SPECS]
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
PASSWORD = "Pa55-w0rd-in-the-url"
WAITING = "database not ready; trying again"


@contextlib.asynccontextmanager
async def forwarding(port: int, host: str, to_port: int) -> AsyncIterator[None]:
    """Connections to `port` forwarded to `host:to_port` while this lasts; before, nothing
    listens there: a database that is away, then answers."""

    async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(host, to_port)
        await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))

    server = await asyncio.start_server(forward, "127.0.0.1", port)
    try:
        yield
    finally:
        server.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


def events(output: str) -> list[dict[str, object]]:
    """The service's own log lines, in order."""
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
async def test_with_its_database_away_it_says_not_serving_keeps_trying_and_stops_cleanly(
    spec: registry.ServiceSpec, tmp_path
):
    database = f"shop_{spec.name}"
    away = f"postgresql://{database}:{PASSWORD}@127.0.0.1:{free_port()}/{database}"
    env = {"SHOP_DATABASE_URL": away}
    async with ServiceProcess(spec.main_module, tmp_path, env, wait_serving=False) as service:
        # The kubelet's readiness probe keeps the pod out of the endpoints; its startup and
        # liveness probes find the process alive, so it is not restarted.
        assert await service.probe_health() == NOT_SERVING
        assert await service.probe_health(LIVENESS) == SERVING
        with pytest.raises(grpc.aio.AioRpcError):
            await service.health(spec.full_name)  # the main port is not open yet
        await asyncio.sleep(1)
        assert await service.probe_health() == NOT_SERVING
        began = time.monotonic()
        assert await service.terminate() == 0
        assert time.monotonic() - began < 2
        output = await service.output()
    lines = events(output)
    names = [line["event"] for line in lines]
    first_try = names.index(WAITING)
    assert names.index("probe port serving grpc.health.v1 in plaintext") < first_try
    tries = [line for line in lines if line["event"] == WAITING]
    assert len(tries) >= 3
    assert all(str(line["reason"]).startswith("ConnectionRefusedError") for line in tries)
    assert names[-2:] == ["shutting down before serving", "stopped"]
    assert PASSWORD not in output


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
async def test_once_its_database_answers_it_serves(spec: registry.ServiceSpec, tmp_path):
    async with postgres_database(postgres_server_url()) as url:
        database, port = make_url(url), free_port()
        # The server trusts local connections: the password only shows that logs omit it.
        through = database.set(port=port, password=PASSWORD)
        env = {"SHOP_DATABASE_URL": through.render_as_string(hide_password=False)}
        async with ServiceProcess(spec.main_module, tmp_path, env, wait_serving=False) as service:
            assert await service.probe_health() == NOT_SERVING
            async with forwarding(port, database.host or "127.0.0.1", database.port or 5432):
                async with asyncio.timeout(10):
                    while await service.probe_health() != SERVING:
                        await asyncio.sleep(0.1)
                assert await service.health(spec.full_name) == SERVING
                assert await service.terminate() == 0
            output = await service.output()
    names = [line["event"] for line in events(output)]
    assert names.index(WAITING) < names.index("database ready") < names.index("serving")
    assert PASSWORD not in output
