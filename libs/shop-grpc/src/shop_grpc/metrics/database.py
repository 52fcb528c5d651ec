"""How long units of work hold their database transaction.

    shop_db_transaction_duration_seconds   histogram   access, outcome

``access`` is ``read`` (a read-only unit of work) or ``write``; ``outcome`` is ``committed``,
``rolled_back`` (left without a commit: a read, or a write that found nothing to do) or
``failed`` (an exception left the unit of work). Measured from the moment the transaction has
its connection (on SQLite, once the write lock is held) to its end, so a wait for the lock
shows in the calls' durations but not here.
"""

from __future__ import annotations

import time

from prometheus_client import Histogram

from shop_grpc.metrics import trace_exemplar

READ = "read"
WRITE = "write"
COMMITTED = "committed"
ROLLED_BACK = "rolled_back"
FAILED = "failed"

TRANSACTION_SECONDS = Histogram(
    "shop_db_transaction_duration_seconds",
    "Seconds a unit of work held its database transaction, by access and outcome.",
    ("access", "outcome"),
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
_SERIES = {
    (access, outcome): TRANSACTION_SECONDS.labels(access, outcome)
    for access in (READ, WRITE)
    for outcome in (COMMITTED, ROLLED_BACK, FAILED)
}


def transaction_ended(*, readonly: bool, outcome: str, began: float) -> None:
    """Observes a transaction that began at ``time.perf_counter()`` `began`."""
    series = _SERIES[(READ if readonly else WRITE, outcome)]
    series.observe(time.perf_counter() - began, trace_exemplar())
