"""The interceptor chains, in the order they run (outermost first).

Server (one grpc interceptor, interceptors._wrap.Chain, that builds each method's handler
through these once; per call, each is one coroutine around the next):
  1. ServerSpans      only when an exporter is configured (shop_grpc.telemetry): the server
                      span, parented on the caller's traceparent. Outermost, so every log line
                      below carries its ids and it records the final status, denials included.
                      Health and reflection are not traced.
  2. ServerMetrics    unless metrics are off (SHOP_METRICS_ADDRESS=off): the grpc_server_*
                      families (shop_grpc.metrics.rpc). Inside the span, so a duration's
                      exemplar names its trace; outside everything else, so denials count.
  3. RequestLogging   binds the method to the log context; one line per call
  4. IdentityCheck    the caller's certificate identity against shop_grpc.policy (with mTLS),
                      and on the methods open to customers their access token
                      (shop_grpc.tokens): PERMISSION_DENIED or UNAUTHENTICATED before any
                      later step or handler; binds who the call acts for (shop_grpc.principal)
  5. ErrorMapping     ShopError -> status code + google.rpc details; anything else -> INTERNAL
  6. DeadlineBinding  binds the call's deadline (or the default budget) for outbound calls;
                      answers a stray CancelledError with a status (shop_grpc.deadlines)
  7. RequestValidation every request message against the rules in its .proto
                      (protovalidate; shop_grpc.validation): INVALID_ARGUMENT before any
                      handler code runs. Inside ErrorMapping, which turns it into a status;
                      after the identity check, so unauthorised callers learn nothing of the
                      rules' verdicts.
  8. FaultInjection   only when SHOP_FAULTS is set (tests): delays or fails chosen methods
                      right before the handler, so it sees what the handler would see

Spans, metrics and log lines record the status the caller receives (shop_grpc.outcome):
CANCELLED when the client cancelled, DEADLINE_EXCEEDED once the deadline passed, whatever the
handler saw.
Every handler runs start to end in its call's task (interceptors._wrap writes a streaming
handler's responses itself), so a cancellation reaches each layer, innermost first.

Client (channels.open_channel installs ``client_interceptors()``):
  1. metrics               unless metrics are off: the grpc_client_* families
                           (shop_grpc.metrics.client). Outermost, so it times what the caller
                           waits for and counts a call that deadline propagation fails before
                           sending (DeadlineExceeded).
  2. deadline propagation  timeout = min(explicit, remaining - hop margin), or fail fast with
                           DEADLINE_EXCEEDED (shop_grpc.deadlines). It must run before any
                           tracing interceptor: OpenTelemetry's async client interceptor stops
                           cancellation reaching the server unless the call has an explicit timeout.
  3. tracing               only when an exporter is configured (shop_grpc.telemetry): the client
                           span, and traceparent in the metadata. Inside deadline propagation, so
                           it always sees, and passes on, an explicit timeout. Unary calls get
                           ours (telemetry_sdk.UnaryClientSpans: under an unsampled span it makes
                           none and only passes the decision on); the streaming shapes get the
                           OpenTelemetry instrumentation's, its stream-unary one patched to
                           cancel the call when the caller is cancelled (shop_grpc.telemetry_sdk);
                           with the timeout, a call can never outlive its budget either way. All
                           four record a cancelled call as CANCELLED.
"""

from __future__ import annotations

import grpc

from shop_grpc import telemetry
from shop_grpc.config import ServerSettings
from shop_grpc.deadlines import client_interceptors as deadline_propagation
from shop_grpc.interceptors._wrap import Chain, HandlerWrapping
from shop_grpc.interceptors.deadlines import DeadlineBinding
from shop_grpc.interceptors.errors import ErrorMapping
from shop_grpc.interceptors.faults import FaultInjection
from shop_grpc.interceptors.identity import identity_check
from shop_grpc.interceptors.logging import RequestLogging
from shop_grpc.interceptors.metrics import ServerMetrics
from shop_grpc.interceptors.validation import RequestValidation
from shop_grpc.metrics import client as metrics_client


def server_interceptors(settings: ServerSettings) -> list[grpc.aio.ServerInterceptor]:
    """One interceptor: the chain above, each method's handler built through it once."""
    chain: list[HandlerWrapping] = [
        *telemetry.server_interceptors(),
        *([ServerMetrics()] if settings.metrics_address else []),
        RequestLogging(),
        *identity_check(settings),
        ErrorMapping(),
        DeadlineBinding(settings.default_deadline_seconds),
        RequestValidation(),
    ]
    if settings.faults:
        chain.append(FaultInjection(settings.faults))
    return [Chain(chain)]


def client_interceptors(
    default_timeout: float | None = None,
) -> list[grpc.aio.ClientInterceptor]:
    """`default_timeout`: the budget of a call made outside any inbound call's budget."""
    return [
        *metrics_client.client_interceptors(),
        *deadline_propagation(default_timeout),
        *telemetry.client_interceptors(),
    ]
