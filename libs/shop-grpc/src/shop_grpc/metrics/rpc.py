"""RED metrics of gRPC calls, as go-grpc-prometheus names and labels them.

Families (the ``grpc_client_*`` ones alike, for the calls a service makes):

    grpc_server_started_total        counter    grpc_type, grpc_service, grpc_method
    grpc_server_handled_total        counter    grpc_type, grpc_service, grpc_method, grpc_code
    grpc_server_handling_seconds     histogram  grpc_type, grpc_service, grpc_method
    grpc_server_msg_received_total   counter    grpc_type, grpc_service, grpc_method
    grpc_server_msg_sent_total       counter    grpc_type, grpc_service, grpc_method

``grpc_type`` is unary, client_stream, server_stream or bidi_stream; ``grpc_service`` the
proto's full service name (``shop.order.v1.OrderService``); ``grpc_method`` the bare method
(``CreateOrder``); ``grpc_code`` the status the caller received, spelled as grpc-go spells it
(``OK``, ``Canceled``, ``InvalidArgument``, ``DeadlineExceeded`` …), which is what the rules
and dashboards written for go-grpc-prometheus match on. A unary call counts one message each
way, as go-grpc-prometheus counts it (none sent when it fails).

Source: github.com/grpc-ecosystem/go-grpc-prometheus (server_metrics.go, client_metrics.go)
and grpc-go's codes/code_string.go.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from prometheus_client import Counter, Histogram

from shop_grpc.metrics import trace_exemplar

LABELS = ("grpc_type", "grpc_service", "grpc_method")
HANDLED_LABELS = (*LABELS, "grpc_code")
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Seconds. Prometheus's default buckets, with 1 and 2.5 ms added: a call between two services
on one host takes a few milliseconds, and the default's first bucket (5 ms) would hold them all.
The SLO thresholds of the chart's alert rules are among them."""

UNARY = "unary"
CLIENT_STREAM = "client_stream"
SERVER_STREAM = "server_stream"
BIDI_STREAM = "bidi_stream"

CODE_NAMES = {
    grpc.StatusCode.OK: "OK",
    grpc.StatusCode.CANCELLED: "Canceled",
    grpc.StatusCode.UNKNOWN: "Unknown",
    grpc.StatusCode.INVALID_ARGUMENT: "InvalidArgument",
    grpc.StatusCode.DEADLINE_EXCEEDED: "DeadlineExceeded",
    grpc.StatusCode.NOT_FOUND: "NotFound",
    grpc.StatusCode.ALREADY_EXISTS: "AlreadyExists",
    grpc.StatusCode.PERMISSION_DENIED: "PermissionDenied",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "ResourceExhausted",
    grpc.StatusCode.FAILED_PRECONDITION: "FailedPrecondition",
    grpc.StatusCode.ABORTED: "Aborted",
    grpc.StatusCode.OUT_OF_RANGE: "OutOfRange",
    grpc.StatusCode.UNIMPLEMENTED: "Unimplemented",
    grpc.StatusCode.INTERNAL: "Internal",
    grpc.StatusCode.UNAVAILABLE: "Unavailable",
    grpc.StatusCode.DATA_LOSS: "DataLoss",
    grpc.StatusCode.UNAUTHENTICATED: "Unauthenticated",
}
"""A status code as grpc-go's ``codes.Code.String()`` spells it."""


@dataclass(frozen=True)
class Families:
    """The five families of one side of a call (server or client)."""

    started: Counter
    handled: Counter
    handling_seconds: Histogram
    msg_received: Counter
    msg_sent: Counter


def _families(side: str, where: str) -> Families:
    prefix = f"grpc_{side}"
    return Families(
        started=Counter(f"{prefix}_started", f"RPCs started {where}.", LABELS),
        handled=Counter(
            f"{prefix}_handled",
            f"RPCs finished {where}, by the status code the caller received.",
            HANDLED_LABELS,
        ),
        handling_seconds=Histogram(
            f"{prefix}_handling_seconds",
            f"Seconds from the start of an RPC to its end, {where}.",
            LABELS,
            buckets=BUCKETS,
        ),
        msg_received=Counter(f"{prefix}_msg_received", f"Messages received {where}.", LABELS),
        msg_sent=Counter(f"{prefix}_msg_sent", f"Messages sent {where}.", LABELS),
    )


SERVER = _families("server", "by the server")
CLIENT = _families("client", "by the client")


def rpc_type(request_streaming: bool, response_streaming: bool) -> str:
    if request_streaming:
        return BIDI_STREAM if response_streaming else CLIENT_STREAM
    return SERVER_STREAM if response_streaming else UNARY


def split_method(full_method: str) -> tuple[str, str]:
    """``/shop.order.v1.OrderService/CreateOrder`` -> (``shop.order.v1.OrderService``,
    ``CreateOrder``)."""
    service, _, method = full_method.lstrip("/").rpartition("/")
    return service, method


class MethodMetrics:
    """One method's series on one side, looked up once: a call then only counts and observes.

    The label lookup of the client library takes a lock and a dict lookup per call; the
    handled series are kept per status code as they first occur.
    """

    def __init__(self, families: Families, grpc_type: str, full_method: str) -> None:
        service, method = split_method(full_method)
        labels = (grpc_type, service, method)
        self._labels = labels
        self._families = families
        self.started = families.started.labels(*labels)
        self.handling_seconds = families.handling_seconds.labels(*labels)
        self.msg_received = families.msg_received.labels(*labels)
        self.msg_sent = families.msg_sent.labels(*labels)
        self._handled: dict[grpc.StatusCode, Counter] = {}

    def finished(self, code: grpc.StatusCode, seconds: float) -> None:
        """Counts a call ended with `code` after `seconds`; the duration carries the current
        span's trace id when it is sampled."""
        handled = self._handled.get(code)
        if handled is None:
            name = CODE_NAMES.get(code, CODE_NAMES[grpc.StatusCode.UNKNOWN])
            handled = self._handled[code] = self._families.handled.labels(*self._labels, name)
        handled.inc()
        self.handling_seconds.observe(seconds, trace_exemplar())
