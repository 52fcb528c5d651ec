"""How a call failed: its status code and the ``google.rpc`` details that came with it.

with rpc_fails(grpc.StatusCode.INVALID_ARGUMENT, fields={"user_id", "lines"}):
    await stub.CreateOrder(request)

with rpc_fails(grpc.StatusCode.NOT_FOUND) as failed:
    await stub.GetProduct(request)
assert failed.error.resource_name == "ghost"
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager

import grpc

from shop_grpc import errors
from shop_grpc.status import from_rpc_error


class RpcFailure:
    """What ``rpc_fails`` caught; its properties raise AssertionError until the block ended."""

    def __init__(self) -> None:
        self._caught: grpc.aio.AioRpcError | None = None

    @property
    def rpc_error(self) -> grpc.aio.AioRpcError:
        if self._caught is None:
            raise AssertionError("no call has failed yet: read this after the block")
        return self._caught

    @property
    def code(self) -> grpc.StatusCode:
        return self.rpc_error.code()

    @property
    def details(self) -> str:
        """The status message (``grpc-message``), "" when there is none."""
        return self.rpc_error.details() or ""

    @property
    def error(self) -> errors.ShopError:
        """The ShopError the status stands for, with its details (``status.from_rpc_error``)."""
        return from_rpc_error(self.rpc_error)

    @property
    def fields(self) -> list[str]:
        """The fields the BadRequest detail names, in its order; [] for any other code."""
        error = self.error
        return (
            [v.field for v in error.violations] if isinstance(error, errors.InvalidArgument) else []
        )


@contextmanager
def rpc_fails(
    code: grpc.StatusCode,
    *,
    fields: Collection[str] | None = None,
    field: str | None = None,
    reason: str | None = None,
) -> Iterator[RpcFailure]:
    """Asserts that the block raises ``grpc.aio.AioRpcError`` with `code` and, when given:

    - `fields` (INVALID_ARGUMENT only): exactly these fields, in any order, are the ones the
      BadRequest detail's violations name;
    - `field` (INVALID_ARGUMENT only): this field is among them;
    - `reason`: the ErrorInfo detail's reason (``REQUEST_ID_REUSED``, ...).

    Raises AssertionError, saying what came instead, when the block ends without a failed call
    or with another one; TypeError, before the block runs, for `fields` or `field` with another
    code. Any other exception from the block passes through.
    """
    if (fields is not None or field is not None) and code != grpc.StatusCode.INVALID_ARGUMENT:
        raise TypeError(f"fields are named by INVALID_ARGUMENT only, not by {code.name}")
    failure = RpcFailure()
    try:
        yield failure
    except grpc.aio.AioRpcError as caught:
        failure._caught = caught
    else:
        raise AssertionError(f"expected the call to fail with {code.name}; it did not fail")
    _check(failure, code, fields, field, reason)


def _check(
    failure: RpcFailure,
    code: grpc.StatusCode,
    fields: Collection[str] | None,
    field: str | None,
    reason: str | None,
) -> None:
    seen = f"{failure.code.name}: {failure.details!r}"
    if failure.code != code:
        wrong = f"expected {code.name}, got {seen}"
    elif fields is not None and set(failure.fields) != set(fields):
        wrong = f"expected the fields {sorted(fields)}, got {failure.fields} ({seen})"
    elif field is not None and field not in failure.fields:
        wrong = f"expected the field {field!r} among {failure.fields} ({seen})"
    elif reason is not None and failure.error.reason != reason:
        wrong = f"expected the reason {reason!r}, got {failure.error.reason!r} ({seen})"
    else:
        return
    raise AssertionError(wrong) from failure.rpc_error
