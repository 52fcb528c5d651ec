"""What says whether orders flow: how they end, why they fail, how the saga's steps go, and
what is left for recovery.

    shop_orders_finished_total                  counter    status
    shop_order_failures_total                   counter    step, reason
    shop_saga_step_duration_seconds             histogram  step, result
    shop_saga_step_retries_total                counter    step
    shop_saga_compensations_total               counter    action
    shop_order_recovery_claims_total            counter
    shop_orders_unfinished                      gauge
    shop_orders_unfinished_oldest_age_seconds   gauge

``status`` is the order's final one (CONFIRMED, FAILED, CANCELLED); ``step`` a saga step
(``CHARGING_PAYMENT``…); ``reason`` the class of a failure (``FailureReason``), never its text,
which names ids; ``result`` how a step's try went: ``done`` (the order moved on), ``retry`` (it
will be tried again), ``failed`` (it failed the order); a pass that only notes something
before the step's call (that a charge is going out) is not a try. ``action`` is ``refund``
or ``release``: undo steps carried out, each a call, whether or not anything was left to give
back (a release follows a refused reservation too, since a reserve may land after its
refusal).

Counted by the replica that drove the order; counts are of events, not of orders exactly once
(a replica that crashed after a step but before counting it leaves the step to be counted by
the replica that runs it again). The two gauges are the database's view, read by each
replica's recovery scan: every replica shows the same values, so dashboards take their max.
"""

from __future__ import annotations

import enum
import time
from datetime import datetime

from prometheus_client import Counter, Gauge, Histogram

from shop_grpc.metrics import trace_exemplar
from shop_order.domain.model import FORWARD_STEPS, UNDO_STEPS, Status, Step


class FailureReason(enum.StrEnum):
    """Why an order failed, as a bounded set of label values."""

    USER_NOT_FOUND = "user_not_found"
    PRODUCT_NOT_FOUND = "product_not_found"
    OUT_OF_STOCK = "out_of_stock"
    PAYMENT_DECLINED = "payment_declined"
    PAYMENT_NOT_POSSIBLE = "payment_not_possible"
    RESERVATION_LAPSED = "reservation_lapsed"
    REFUSED = "refused"
    """A dependency answered the step with an error that retrying cannot change."""
    GAVE_UP = "gave_up"
    """The step kept failing until the order's give-up time."""


DONE = "done"
RETRY = "retry"
FAILED = "failed"

ORDERS_FINISHED = Counter(
    "shop_orders_finished", "Orders that reached a final status, by that status.", ("status",)
)
ORDER_FAILURES = Counter(
    "shop_order_failures",
    "Orders failed by a saga step, by the step and the class of the reason.",
    ("step", "reason"),
)
STEP_SECONDS = Histogram(
    "shop_saga_step_duration_seconds",
    "Seconds of one try of a saga step (its call included), by step and how the try went.",
    ("step", "result"),
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
STEP_RETRIES = Counter(
    "shop_saga_step_retries", "Failed tries of a saga step that will be tried again.", ("step",)
)
COMPENSATIONS = Counter(
    "shop_saga_compensations",
    "Undo steps carried out for failed or cancelled orders: refunds and stock releases.",
    ("action",),
)
RECOVERY_CLAIMS = Counter(
    "shop_order_recovery_claims",
    "Unfinished orders claimed by a recovery scan (their replica died, or they were due).",
)
UNFINISHED = Gauge("shop_orders_unfinished", "Orders with saga work left, at the last scan.")
OLDEST_UNFINISHED_AGE = Gauge(
    "shop_orders_unfinished_oldest_age_seconds",
    "Seconds since the oldest order with saga work left was placed, at the last scan; 0 if none.",
)

_ACTIONS = {Step.REFUNDING_PAYMENT: "refund", Step.RELEASING_STOCK: "release"}

# Shown at 0 before the first event, so rates, dashboards and alerts see the series from the
# start: every final status, compensation, step and (forward step, reason) pair.
for _status in (Status.CONFIRMED, Status.FAILED, Status.CANCELLED):
    ORDERS_FINISHED.labels(_status.value)
for _action in _ACTIONS.values():
    COMPENSATIONS.labels(_action)
for _step in (*FORWARD_STEPS, *UNDO_STEPS):
    STEP_RETRIES.labels(_step.value)
for _step in FORWARD_STEPS[1:]:  # ACCEPTED makes no call, and so fails nothing
    for _reason in FailureReason:
        ORDER_FAILURES.labels(_step.value, _reason.value)


def order_finished(status: Status) -> None:
    ORDERS_FINISHED.labels(status.value).inc()


def order_failed(step: Step, reason: FailureReason) -> None:
    ORDER_FAILURES.labels(step.value, reason.value).inc()


def step_tried(step: Step, result: str, began: float) -> None:
    """One try of `step`, begun at ``time.perf_counter()`` `began`, went as `result` says."""
    STEP_SECONDS.labels(step.value, result).observe(time.perf_counter() - began, trace_exemplar())
    if result == RETRY:
        STEP_RETRIES.labels(step.value).inc()
    elif result == DONE and step in _ACTIONS:
        COMPENSATIONS.labels(_ACTIONS[step]).inc()


def recovery_claimed(count: int) -> None:
    RECOVERY_CLAIMS.inc(count)


def backlog_seen(unfinished: int, oldest_create_time: datetime | None, now: datetime) -> None:
    UNFINISHED.set(unfinished)
    age = 0.0 if oldest_create_time is None else (now - oldest_create_time).total_seconds()
    OLDEST_UNFINISHED_AGE.set(max(age, 0.0))
