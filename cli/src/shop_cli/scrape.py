"""A Prometheus configuration that scrapes a local suite, written next to its data.

    prometheus --config.file=.shop/prometheus.yml --enable-feature=exemplar-storage

One job per service, named after it (as the chart's ServiceMonitor names them, so the chart's
dashboard works on it unchanged), over every replica's metrics port, with ``namespace="local"``
standing in for the cluster's namespace label. ``exemplar-storage`` keeps the trace ids that
the duration histograms carry (OpenMetrics, which Prometheus asks for by itself).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

FILE_NAME = "prometheus.yml"
NAMESPACE = "local"


def scrape_config(metrics_endpoints: Mapping[str, str], interval: str = "5s") -> dict[str, object]:
    """`metrics_endpoints`: service -> its replicas' host:port, comma-separated (as
    ``Suite.metrics_endpoints`` and ``ReplicatedSuite.metrics_endpoints`` give them)."""
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "scrape_configs": [
            {
                "job_name": service,
                "static_configs": [
                    {
                        "targets": [t.strip() for t in endpoints.split(",")],
                        "labels": {"namespace": NAMESPACE},
                    }
                ],
            }
            for service, endpoints in metrics_endpoints.items()
        ],
    }


def write_scrape_config(
    directory: Path, metrics_endpoints: Mapping[str, str], interval: str = "5s"
) -> Path:
    """Writes `directory`/prometheus.yml (JSON, which is YAML too); returns its path."""
    path = directory / FILE_NAME
    path.write_text(json.dumps(scrape_config(metrics_endpoints, interval), indent=2) + "\n")
    return path
