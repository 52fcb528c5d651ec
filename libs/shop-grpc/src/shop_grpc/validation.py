"""Request validation that reports every bad field at once, before storage is touched.

Two layers, one error:

- **Field rules live in the .proto files** (protovalidate annotations, with shop's shared rules
  in ``shop/common/v1/rules.proto``). ``check_message`` applies them; the server's validation
  interceptor calls it on every request message of every RPC before any handler runs, so no
  entry point can skip them and clients read the same rules through reflection.
- **Rules that need more than one message** (a required field that depends on the RPC, an
  update mask naming a field whose new value is empty) are written in the entrypoints with
  ``Violations``.

Both raise one ``InvalidArgument`` whose violations name fields by their path in the request,
``lines[2].quantity`` or ``labels["k"]`` (AIP-193 ``BadRequest.FieldViolation.field``).
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import protovalidate
from google.protobuf.message import Message

from shop_grpc.errors import FieldViolation, InvalidArgument

_validator = protovalidate.Validator()


def field_violations(message: Message, prefix: str = "") -> list[FieldViolation]:
    """Every protovalidate rule `message` breaks, as field violations named under `prefix`.

    Raises ``protovalidate.CompilationError`` if a rule in the .proto cannot compile: a bug in
    the API definition, which tests over every message catch.
    """
    violations = []
    for found in _validator.collect_violations(message):
        path = found.proto.field
        # A message-level rule names no field: it is about the request as a whole.
        name = _path(path.elements) if path is not None else ""
        violations.append(
            FieldViolation((prefix + name).rstrip(".") or "request", found.proto.message)
        )
    return violations


def check_message(message: Message, prefix: str = "") -> None:
    """Raises InvalidArgument if `message` breaks any rule declared in its .proto."""
    violations = field_violations(message, prefix)
    if violations:
        raise InvalidArgument(violations)


def _path(elements: Any) -> str:
    """`lines[2].quantity` from protovalidate's field path elements."""
    parts: list[str] = []
    for element in elements:
        name = element.field_name
        subscript = element.subscript
        if subscript is None:
            parts.append(name)
        elif isinstance(subscript.value, str):
            parts.append(f'{name}["{subscript.value}"]')
        else:
            parts.append(f"{name}[{subscript.value}]")
    return ".".join(parts)


class Violations:
    """Collects field violations; raises one InvalidArgument on exit if any.

    with Violations() as v:
        v.check(bool(req.user.username), "user.username", "is required")
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
