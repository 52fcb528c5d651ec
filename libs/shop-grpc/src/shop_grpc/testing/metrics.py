"""What a test's calls did to the process's Prometheus series, and a /metrics endpoint's answer.

    changes = MetricChanges()
    ...  # calls
    assert changes.of("grpc_server_handled_total", grpc_method="GetUser", ...) == 1

The registry is the process's own, shared by every test that ran before: compare growth, not
values. A series is named by its sample name (``…_total``, ``…_count``, ``…_bucket``) and all of
its labels.
"""

from __future__ import annotations

import urllib.request

from prometheus_client import REGISTRY

OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
"""The Accept header that asks for OpenMetrics, which carries exemplars (Prometheus sends it)."""

Key = tuple[str, tuple[tuple[str, str], ...]]


def samples() -> dict[Key, float]:
    """Every sample of the process's registry, by name and labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in REGISTRY.collect()
        for sample in family.samples
    }


class MetricChanges:
    """The registry's samples when made; `of` reads how much one grew since."""

    def __init__(self) -> None:
        self._before = samples()

    def of(self, name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return samples().get(key, 0.0) - self._before.get(key, 0.0)


def scrape(port: int, accept: str | None = None, host: str = "127.0.0.1") -> tuple[str, str]:
    """GET http://host:port/metrics -> (Content-Type, body). Blocking: from async code, run it
    in a thread (the endpoint is served by a thread of the scraped process, maybe this one)."""
    request = urllib.request.Request(f"http://{host}:{port}/metrics")
    if accept:
        request.add_header("Accept", accept)
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(response.headers["Content-Type"]), response.read().decode()
