"""Request validation that reports every bad field at once, before storage is touched."""

from __future__ import annotations

import re
from types import TracebackType

from shop_grpc.errors import FieldViolation, InvalidArgument

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
MAX_REQUEST_ID = 64


class Violations:
    """Collects field violations; raises one InvalidArgument on exit if any.

    with Violations() as v:
        v.check(bool(req.user_id), "user_id", "is required")
    """

    def __init__(self) -> None:
        self.items: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        self.items.append(FieldViolation(field, description))

    def check(self, ok: bool, field: str, description: str) -> bool:
        if not ok:
            self.add(field, description)
        return ok

    def required(self, value: str, field: str) -> bool:
        return self.check(bool(value), field, "is required")

    def uuid(self, value: str, field: str, *, required: bool = True) -> bool:
        if not value:
            return self.check(not required, field, "is required")
        return self.check(bool(_UUID.match(value)), field, "must be a UUID")

    def matches(self, value: str, pattern: re.Pattern[str], field: str, rule: str) -> bool:
        if not value:
            return self.required(value, field)
        return self.check(bool(pattern.fullmatch(value)), field, f"must be {rule}")

    def length(self, value: str, field: str, *, low: int, high: int) -> bool:
        return self.check(
            low <= len(value) <= high, field, f"must be {low} to {high} characters long"
        )

    def request_id(self, value: str, field: str = "request_id") -> bool:
        return self.check(
            len(value) <= MAX_REQUEST_ID, field, f"must be at most {MAX_REQUEST_ID} characters"
        )

    def currency(self, value: str, field: str) -> bool:
        return self.check(bool(_CURRENCY.match(value)), field, "must be an ISO 4217 code like USD")

    def page_size(self, value: int, field: str = "page_size") -> bool:
        return self.check(0 <= value <= 500, field, "must be between 0 and 500")

    def raise_if_any(self) -> None:
        if self.items:
            raise InvalidArgument(list(self.items))

    def __enter__(self) -> Violations:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.raise_if_any()
