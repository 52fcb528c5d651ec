"""The one mapping between the error tree and gRPC statuses, both directions.

Servers turn a ShopError into a status code plus ``google.rpc.Status`` details
(BadRequest, PreconditionFailure, ResourceInfo, RetryInfo, ErrorInfo) in the
``grpc-status-details-bin`` trailer; clients turn an ``AioRpcError`` back into
the matching ShopError with the same details.
"""

from __future__ import annotations

import datetime
from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from shop_grpc import errors

DOMAIN = "shop"
T = TypeVar("T")

# A status travels in the call's trailers: its message as grpc-message, its details base64'd in
# grpc-status-details-bin. Clients refuse trailers past 16 KiB (grpc core's hard limit, and may
# refuse some from 8 KiB), and the caller then sees RESOURCE_EXHAUSTED instead of the answer.
# So an answer to a request with a thousand bad fields names as many as fit well inside that,
# and says how many it left out.
MAX_MESSAGE_CHARS = 512
MAX_DETAILS_BYTES = 3072

# Codes that carry no details. What is not listed (INTERNAL, UNKNOWN, DATA_LOSS, UNIMPLEMENTED,
# UNAUTHENTICATED, OUT_OF_RANGE) is a broken dependency: errors.Internal, never retried, since
# the same call would fail the same way.
_SIMPLE: dict[grpc.StatusCode, type[errors.ShopError]] = {
    grpc.StatusCode.PERMISSION_DENIED: errors.PermissionDenied,
    grpc.StatusCode.ABORTED: errors.Aborted,
    grpc.StatusCode.UNAVAILABLE: errors.Unavailable,
    # Too busy now is trouble that passes, like UNAVAILABLE.
    grpc.StatusCode.RESOURCE_EXHAUSTED: errors.Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: errors.DeadlineExceeded,
    grpc.StatusCode.CANCELLED: errors.DeadlineExceeded,
}


def code_of(error: errors.ShopError) -> grpc.StatusCode:
    return grpc.StatusCode[error.code]


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


def to_status(error: errors.ShopError) -> status_pb2.Status:
    """The google.rpc.Status that carries `error` to a client, within the trailers' size."""
    code = code_of(error)
    status = status_pb2.Status(code=code.value[0], message=_clipped(error.message))
    if isinstance(error, errors.InvalidArgument):
        fields = [
            error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
            for v in error.violations
        ]
        status.details.append(
            _pack(
                error_details_pb2.BadRequest(
                    field_violations=_fitting(
                        fields,
                        lambda left: error_details_pb2.BadRequest.FieldViolation(
                            field="request", description=f"{left} more violations not shown"
                        ),
                    )
                )
            )
        )
    if isinstance(error, errors.FailedPrecondition) and error.violations:
        unmet = [
            error_details_pb2.PreconditionFailure.Violation(
                type=v.type, subject=v.subject, description=v.description
            )
            for v in error.violations
        ]
        status.details.append(
            _pack(
                error_details_pb2.PreconditionFailure(
                    violations=_fitting(
                        unmet,
                        lambda left: error_details_pb2.PreconditionFailure.Violation(
                            type="MORE", description=f"{left} more violations not shown"
                        ),
                    )
                )
            )
        )
    if isinstance(error, errors.NotFound | errors.AlreadyExists):
        status.details.append(
            _pack(
                error_details_pb2.ResourceInfo(
                    resource_type=error.resource_type,
                    resource_name=_clipped(error.resource_name),
                )
            )
        )
    if isinstance(error, errors.ResourceExhausted):
        delay = duration_pb2.Duration()
        delay.FromTimedelta(datetime.timedelta(seconds=max(error.retry_after_seconds, 0.0)))
        status.details.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
    if error.reason:
        status.details.append(
            _pack(error_details_pb2.ErrorInfo(reason=error.reason, domain=DOMAIN))
        )
    return status


def _clipped(text: str) -> str:
    if len(text) <= MAX_MESSAGE_CHARS:
        return text
    return text[: MAX_MESSAGE_CHARS - 20] + f"… (+{len(text) - MAX_MESSAGE_CHARS + 20} chars)"


V = TypeVar("V", bound=Message)


def _fitting(items: list[V], more: Callable[[int], V]) -> list[V]:
    """As many of `items` as fit in MAX_DETAILS_BYTES, then one saying how many did not."""
    kept: list[V] = []
    size = 0
    for item in items:
        size += item.ByteSize() + 4  # and the field's tag and length
        if size > MAX_DETAILS_BYTES:
            return [*kept, more(len(items) - len(kept))]
        kept.append(item)
    return kept


def trailing_metadata(status: status_pb2.Status) -> tuple[tuple[str, bytes], ...]:
    return ((rpc_status.GRPC_DETAILS_METADATA_KEY, status.SerializeToString()),)


def _details(status: status_pb2.Status | None) -> dict[str, object]:
    found: dict[str, object] = {}
    if status is None:
        return found
    for detail in status.details:
        for kind in (
            error_details_pb2.BadRequest,
            error_details_pb2.PreconditionFailure,
            error_details_pb2.ResourceInfo,
            error_details_pb2.ErrorInfo,
        ):
            if detail.Is(kind.DESCRIPTOR):
                message = kind()
                detail.Unpack(message)
                found[kind.DESCRIPTOR.name] = message
    return found


def from_rpc_error(exc: grpc.aio.AioRpcError | grpc.RpcError) -> errors.ShopError:
    """The ShopError a failed call stands for; raise it ``from exc``."""
    code = exc.code()
    message: str = exc.details() or code.name
    details = _details(rpc_status.from_call(exc))
    reason = details.get("ErrorInfo")
    reason_text = reason.reason if isinstance(reason, error_details_pb2.ErrorInfo) else ""
    resource = details.get("ResourceInfo")
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        bad = details.get("BadRequest")
        violations = (
            [errors.FieldViolation(v.field, v.description) for v in bad.field_violations]
            if isinstance(bad, error_details_pb2.BadRequest)
            else []
        )
        return errors.InvalidArgument(violations, message)
    if code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.ALREADY_EXISTS):
        kind: type[errors.NotFound | errors.AlreadyExists] = (
            errors.NotFound if code == grpc.StatusCode.NOT_FOUND else errors.AlreadyExists
        )
        if isinstance(resource, error_details_pb2.ResourceInfo):
            error = kind(resource.resource_type, resource.resource_name)
        else:
            error = kind("resource", "")
        error.message = message
        error.reason = reason_text
        return error
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        failure = details.get("PreconditionFailure")
        violations_pc = (
            [
                errors.PreconditionViolation(v.type, v.subject, v.description)
                for v in failure.violations
            ]
            if isinstance(failure, error_details_pb2.PreconditionFailure)
            else []
        )
        return errors.FailedPrecondition(message, violations_pc, reason=reason_text)
    simple = _SIMPLE.get(code, errors.Internal)
    return simple(f"{code.name}: {message}", reason=reason_text)


async def result_of(call: Awaitable[T]) -> T:
    """Awaits an outbound call, turning a failed status into the matching ShopError."""
    try:
        return await call
    except grpc.aio.AioRpcError as exc:
        raise from_rpc_error(exc) from exc
