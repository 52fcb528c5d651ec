"""One error tree for every service; ``shop_grpc.status`` maps it to gRPC once.

    ShopError
    ├── InvalidArgument      bad request fields (one FieldViolation each)
    ├── NotFound             a named resource does not exist
    ├── AlreadyExists        a unique key is taken
    ├── FailedPrecondition   the system is not in a state that allows the call
    ├── PermissionDenied     the caller may not do this
    ├── Aborted              a concurrent change won; retry the whole operation
    ├── Unavailable          a dependency cannot be reached right now; safe to retry
    └── DeadlineExceeded     the call ran out of time

Domain code raises these (or subclasses of them); it never imports grpc.
"""

from __future__ import annotations

from dataclasses import dataclass


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

    def __init__(self, message: str, *, reason: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


class InvalidArgument(ShopError):
    def __init__(self, violations: list[FieldViolation], message: str = "") -> None:
        summary = "; ".join(f"{v.field}: {v.description}" for v in violations)
        super().__init__(message or f"invalid request: {summary}")
        self.violations = violations


class NotFound(ShopError):
    def __init__(self, resource_type: str, resource_name: str) -> None:
        super().__init__(f"{resource_type} {resource_name!r} not found")
        self.resource_type = resource_type
        self.resource_name = resource_name


class AlreadyExists(ShopError):
    def __init__(self, resource_type: str, resource_name: str, message: str = "") -> None:
        super().__init__(message or f"{resource_type} {resource_name!r} already exists")
        self.resource_type = resource_type
        self.resource_name = resource_name


class FailedPrecondition(ShopError):
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
    pass


class Aborted(ShopError):
    pass


class Unavailable(ShopError):
    pass


class DeadlineExceeded(ShopError):
    pass
