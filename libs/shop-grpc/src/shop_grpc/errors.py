"""One error tree for every service; ``shop_grpc.status`` maps it to gRPC once.

    ShopError
    ├── InvalidArgument      bad request fields (one FieldViolation each)
    ├── NotFound             a named resource does not exist
    ├── AlreadyExists        a unique key is taken
    ├── FailedPrecondition   the system is not in a state that allows the call
    ├── Unauthenticated      the call carries no valid credentials of a customer
    ├── PermissionDenied     the caller may not do this
    ├── ResourceExhausted    the caller must wait before trying again (RetryInfo says how long)
    ├── Internal             a dependency is broken (it answered INTERNAL, UNKNOWN, ...)
    ├── Aborted            * a concurrent change won; retry the whole operation
    ├── Unavailable        * a dependency cannot be reached right now
    └── DeadlineExceeded   * the call ran out of time

Each class names the gRPC code it travels as (``code``). The starred ones are
``retryable``: the same call may succeed later. That flag is the one
classification of a dependency's answer; everything else is an answer, or a
dependency that would fail the same way again, so repeating the call only
spins. (AIP-194 lets a channel retry UNAVAILABLE by itself; ABORTED and a
dependency's DEADLINE_EXCEEDED are for callers that repeat a whole idempotent
operation, as the order saga does.)

Domain code raises these (or subclasses of them); it never imports grpc.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True)
class FieldViolation:
    """One bad field, named by its path in the request (``lines[2].quantity``)."""

    field: str
    description: str


@dataclass(frozen=True)
class PreconditionViolation:
    """One unmet precondition, e.g. type ``STOCK``, subject a product id."""

    type: str
    subject: str
    description: str


class ShopError(Exception):
    """Base of every error a service reports to its callers."""

    code: ClassVar[str] = "UNKNOWN"
    """The gRPC status code it travels as, by name."""
    retryable: ClassVar[bool] = False
    """Whether the same call may succeed later, unchanged."""

    def __init__(self, message: str, *, reason: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


class InvalidArgument(ShopError):
    code = "INVALID_ARGUMENT"

    def __init__(self, violations: list[FieldViolation], message: str = "") -> None:
        summary = "; ".join(f"{v.field}: {v.description}" for v in violations)
        super().__init__(message or f"invalid request: {summary}")
        self.violations = violations


class NotFound(ShopError):
    code = "NOT_FOUND"

    def __init__(self, resource_type: str, resource_name: str) -> None:
        super().__init__(f"{resource_type} {resource_name!r} not found")
        self.resource_type = resource_type
        self.resource_name = resource_name


class AlreadyExists(ShopError):
    code = "ALREADY_EXISTS"

    def __init__(self, resource_type: str, resource_name: str, message: str = "") -> None:
        super().__init__(message or f"{resource_type} {resource_name!r} already exists")
        self.resource_type = resource_type
        self.resource_name = resource_name


class FailedPrecondition(ShopError):
    code = "FAILED_PRECONDITION"

    def __init__(
        self,
        message: str,
        violations: list[PreconditionViolation] | None = None,
        *,
        reason: str = "",
    ) -> None:
        super().__init__(message, reason=reason)
        self.violations = violations or []


class PermissionDenied(ShopError):
    code = "PERMISSION_DENIED"


class Unauthenticated(ShopError):
    """No credentials, or credentials that do not hold (RFC 6750 section 3.1, invalid_token).
    The message never says which part was wrong beyond what the caller can act on."""

    code = "UNAUTHENTICATED"


class ResourceExhausted(ShopError):
    """The caller has used up an allowance (too many failed sign-ins) and must wait
    `retry_after_seconds` before the same call can succeed; travels with a RetryInfo."""

    code = "RESOURCE_EXHAUSTED"

    def __init__(self, message: str, retry_after_seconds: float, *, reason: str = "") -> None:
        super().__init__(message, reason=reason)
        self.retry_after_seconds = retry_after_seconds


class Internal(ShopError):
    """A dependency answered INTERNAL, UNKNOWN, DATA_LOSS, UNIMPLEMENTED, UNAUTHENTICATED or
    OUT_OF_RANGE: a bug or a misconfiguration on the path, which the same call will meet again.
    Passed on as INTERNAL; a service's own bugs are not raised as this but caught by the
    error-mapping interceptor."""

    code = "INTERNAL"


class Aborted(ShopError):
    code = "ABORTED"
    retryable = True


class Unavailable(ShopError):
    code = "UNAVAILABLE"
    retryable = True


class DeadlineExceeded(ShopError):
    code = "DEADLINE_EXCEEDED"
    retryable = True
