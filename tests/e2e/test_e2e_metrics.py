"""A real Prometheus (Debian's package) scrapes a local suite, as `shop up` tells an operator to:
after `shop demo`, its HTTP API shows the CreateOrder that the demo made, the order's outcome,
and an exemplar whose trace id is a trace the services exported."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest

from shop_cli.bench.rpc.sink import receiving
from shop_cli.scrape import write_scrape_config
from shop_cli.suite import Suite
from shop_cli.targets import CLIENT_SERVICES
from shop_grpc import registry
from shop_grpc.testing import free_port

PROMETHEUS = shutil.which("prometheus")
pytestmark = [
    pytest.mark.local_only,
    pytest.mark.skipif(
        PROMETHEUS is None, reason="prometheus is not installed: `python3 tasks.py metrics-tools`"
    ),
]
READY_SECONDS = 30
SEEN_SECONDS = 30


@contextmanager
def prometheus(config: Path, data_dir: Path) -> Iterator[str]:
    """Prometheus on a free loopback port, storing exemplars; yields its base URL."""
    assert PROMETHEUS is not None
    address = f"127.0.0.1:{free_port()}"
    log = (data_dir / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={data_dir / 'tsdb'}",
            f"--web.listen-address={address}",
            "--enable-feature=exemplar-storage",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://{address}"
    try:
        deadline = time.monotonic() + READY_SECONDS
        while not _ready(url):
            assert process.poll() is None, (data_dir / "prometheus.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "Prometheus was not ready in time"
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def api(url: str, path: str, **params: str) -> Any:
    query = urllib.parse.urlencode(params)
    with urllib.request.urlopen(f"{url}/api/v1/{path}?{query}", timeout=10) as response:
        answer = json.loads(response.read())
    assert answer["status"] == "success", answer
    return answer["data"]


def value_of(url: str, query: str) -> float:
    """The one value of an instant query; 0 when it has none yet."""
    result = api(url, "query", query=query)["result"]
    assert len(result) <= 1, result
    return float(result[0]["value"][1]) if result else 0.0


def exemplar_trace_ids(url: str, query: str) -> set[str]:
    now = time.time()
    found = api(url, "query_exemplars", query=query, start=str(now - 600), end=str(now))
    return {e["labels"]["trace_id"] for series in found for e in series["exemplars"]}


def eventually(check: Any, what: str) -> Any:
    """`check()`'s first truthy answer within SEEN_SECONDS (Prometheus scrapes every second)."""
    deadline = time.monotonic() + SEEN_SECONDS
    while not (answer := check()):
        assert time.monotonic() < deadline, f"Prometheus never showed {what}"
        time.sleep(0.5)
    return answer


def shop_demo(suite: Suite) -> subprocess.CompletedProcess[str]:
    targets = [f"--{s}={a}" for s, a in suite.endpoints().items() if s in CLIENT_SERVICES]
    command = [sys.executable, "-m", "shop_cli", "demo", *targets]
    command.append(f"--tls-dir={suite.certs_dir / 'client'}")
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


async def test_prometheus_sees_the_demos_order_and_its_exemplar_leads_to_an_exported_trace(
    tmp_path: Path, traced_suite: Callable[[Path, str], AbstractAsyncContextManager[Suite]]
) -> None:
    async with receiving() as sink, traced_suite(tmp_path / "suite", sink.endpoint) as suite:
        config = write_scrape_config(suite.data_dir, suite.metrics_endpoints(), interval="1s")
        with prometheus(config, tmp_path) as url:
            demo = await asyncio.to_thread(shop_demo, suite)
            assert demo.returncode == 0 and "CONFIRMED" in demo.stdout, demo.stdout + demo.stderr

            def scraped() -> bool:
                up = api(url, "query", query='up{namespace="local"} == 1')["result"]
                return {r["metric"]["job"] for r in up} == set(registry.names())

            handled = (
                'sum(grpc_server_handled_total{job="order",grpc_method="CreateOrder",'
                'grpc_code="OK"})'
            )
            confirmed = 'sum(shop_orders_finished_total{job="order",status="CONFIRMED"})'
            bucket = 'grpc_server_handling_seconds_bucket{job="order",grpc_method="CreateOrder"}'
            await asyncio.to_thread(eventually, scraped, "every service's target up")
            await asyncio.to_thread(eventually, lambda: value_of(url, handled) >= 1, handled)
            await asyncio.to_thread(eventually, lambda: value_of(url, confirmed) >= 1, confirmed)
            traces = await asyncio.to_thread(
                eventually, lambda: exemplar_trace_ids(url, bucket), f"an exemplar of {bucket}"
            )
            # The trace the exemplar names reached the collector.
            await asyncio.to_thread(
                eventually, lambda: traces & sink.trace_ids, "the exemplar's trace exported"
            )
            # The calls order made, and what payment made of them (scraped on their own time).
            for query in (
                'sum(grpc_client_handled_total{job="order",grpc_method="Charge",grpc_code="OK"})',
                'sum(shop_payment_charges_total{job="payment",status="SUCCEEDED"})',
            ):
                await asyncio.to_thread(eventually, lambda q=query: value_of(url, q) >= 1, query)
