"""rpc_fails (shop_grpc.testing.rpc): what it lets through and what not."""

from __future__ import annotations

import grpc
import pytest

from shop_grpc import errors, status
from shop_grpc.testing import (
    rpc_fails,
)

INVALID = grpc.StatusCode.INVALID_ARGUMENT


def failed_call(error: errors.ShopError) -> grpc.aio.AioRpcError:
    """The error a client sees when a server answers `error`, details and all."""
    trailers = grpc.aio.Metadata(*status.trailing_metadata(status.to_status(error)))
    return grpc.aio.AioRpcError(status.code_of(error), grpc.aio.Metadata(), trailers, error.message)


async def answer(error: BaseException | None) -> None:
    if error is not None:
        raise error


BAD_QUANTITY = errors.InvalidArgument(
    [
        errors.FieldViolation("lines[0].quantity", "must be at least 1"),
        errors.FieldViolation("user_id", "must be a UUID"),
    ]
)


REUSED = errors.AlreadyExists("request", "r-1")
REUSED.reason = "REQUEST_ID_REUSED"


async def test_rpc_fails_passes_a_matching_failure_and_keeps_what_it_caught():
    with rpc_fails(INVALID, fields={"user_id", "lines[0].quantity"}, field="user_id") as failed:
        await answer(failed_call(BAD_QUANTITY))
    with rpc_fails(grpc.StatusCode.ALREADY_EXISTS, reason="REQUEST_ID_REUSED") as reused:
        await answer(failed_call(REUSED))

    assert failed.code == INVALID
    assert failed.fields == ["lines[0].quantity", "user_id"]
    assert failed.error.violations[1].description == "must be a UUID"
    assert reused.error.resource_name == "r-1"
    assert "r-1" in reused.details


NOT_FOUND, ALREADY_EXISTS = grpc.StatusCode.NOT_FOUND, grpc.StatusCode.ALREADY_EXISTS


@pytest.mark.parametrize(
    ("code", "expected", "answered", "says"),
    [
        (INVALID, {}, None, "it did not fail"),
        (NOT_FOUND, {}, BAD_QUANTITY, "expected NOT_FOUND, got INVALID"),
        (INVALID, {"fields": {"user_id"}}, BAD_QUANTITY, "expected the fields"),
        (INVALID, {"fields": {"user_id", "x", "lines[0].quantity"}}, BAD_QUANTITY, "fields"),
        (INVALID, {"field": "lines"}, BAD_QUANTITY, "expected the field 'lines'"),
        (ALREADY_EXISTS, {"reason": "OTHER"}, REUSED, "got 'REQUEST_ID_REUSED'"),
    ],
)
async def test_rpc_fails_fails_on_any_other_outcome_saying_what_came(
    code, expected, answered, says
):
    with pytest.raises(AssertionError, match=says), rpc_fails(code, **expected):
        await answer(answered and failed_call(answered))


async def test_rpc_fails_refuses_fields_for_a_code_without_them_and_lets_other_errors_through():
    with (
        pytest.raises(TypeError, match="INVALID_ARGUMENT only"),
        rpc_fails(grpc.StatusCode.NOT_FOUND, field="user_id"),
    ):
        pass
    with pytest.raises(LookupError), rpc_fails(INVALID):
        await answer(LookupError("not a call"))
