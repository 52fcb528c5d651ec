"""Errors survive the trip through a real gRPC call with their details intact
(shop_grpc.status, both directions)."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from shop_grpc import errors, status
from shop_grpc.validation import Violations


async def test_field_violations_arrive_as_bad_request_details(call):
    v = Violations()
    v.required("", "user_id")
    v.check(False, "lines[2].quantity", "must be positive")
    with pytest.raises(errors.InvalidArgument) as raised:
        v.raise_if_any()
    rpc_error = await call(raised.value)
    assert rpc_error.code() == grpc.StatusCode.INVALID_ARGUMENT
    back = status.from_rpc_error(rpc_error)
    assert isinstance(back, errors.InvalidArgument)
    assert back.violations == [
        errors.FieldViolation("user_id", "is required"),
        errors.FieldViolation("lines[2].quantity", "must be positive"),
    ]


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (errors.NotFound("order", "o-1"), grpc.StatusCode.NOT_FOUND),
        (errors.AlreadyExists("user", "username=alice"), grpc.StatusCode.ALREADY_EXISTS),
        (errors.PermissionDenied("no"), grpc.StatusCode.PERMISSION_DENIED),
        (errors.Aborted("again"), grpc.StatusCode.ABORTED),
        (errors.Internal("INTERNAL: broken"), grpc.StatusCode.INTERNAL),
    ],
)
async def test_each_error_kind_has_its_own_code(call, error, code):
    rpc_error = await call(error)
    assert rpc_error.code() == code
    assert type(status.from_rpc_error(rpc_error)) is type(error)


async def test_resource_info_and_precondition_details_round_trip(call):
    rpc_error = await call(errors.NotFound("order", "o-1"))
    back = status.from_rpc_error(rpc_error)
    assert isinstance(back, errors.NotFound)
    assert (back.resource_type, back.resource_name) == ("order", "o-1")

    short = errors.PreconditionViolation("STOCK", "widget", "requested 3, available 1")
    rpc_error = await call(errors.FailedPrecondition("short", [short], reason="OUT_OF_STOCK"))
    back = status.from_rpc_error(rpc_error)
    assert isinstance(back, errors.FailedPrecondition)
    assert (back.violations, back.reason) == ([short], "OUT_OF_STOCK")


async def test_a_dependencys_answer_passes_through_a_handler_with_its_code_and_fields(call):
    # What the order service does with a card the payment service rejects: the caller sees
    # the same INVALID_ARGUMENT and field, never a retryable code.
    bad_card = errors.InvalidArgument([errors.FieldViolation("card.number", "fails Luhn")])
    from_dependency = status.from_rpc_error(await call(bad_card))
    passed_on = await call(from_dependency)
    assert passed_on.code() == grpc.StatusCode.INVALID_ARGUMENT
    again = status.from_rpc_error(passed_on)
    assert isinstance(again, errors.InvalidArgument) and not again.retryable
    assert again.violations == bad_card.violations


async def test_a_dependencys_bug_is_internal_all_the_way_and_not_retryable(call):
    from_dependency = status.from_rpc_error(await call(KeyError("oops")))
    assert isinstance(from_dependency, errors.Internal) and not from_dependency.retryable
    assert (await call(from_dependency)).code() == grpc.StatusCode.INTERNAL


def _failed_call(code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), "details")


@pytest.mark.parametrize(
    ("code", "kind", "retryable"),
    [
        (grpc.StatusCode.UNAVAILABLE, errors.Unavailable, True),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, errors.Unavailable, True),
        (grpc.StatusCode.ABORTED, errors.Aborted, True),
        (grpc.StatusCode.DEADLINE_EXCEEDED, errors.DeadlineExceeded, True),
        (grpc.StatusCode.INVALID_ARGUMENT, errors.InvalidArgument, False),
        (grpc.StatusCode.NOT_FOUND, errors.NotFound, False),
        (grpc.StatusCode.ALREADY_EXISTS, errors.AlreadyExists, False),
        (grpc.StatusCode.FAILED_PRECONDITION, errors.FailedPrecondition, False),
        (grpc.StatusCode.PERMISSION_DENIED, errors.PermissionDenied, False),
        (grpc.StatusCode.INTERNAL, errors.Internal, False),
        (grpc.StatusCode.UNKNOWN, errors.Internal, False),
        (grpc.StatusCode.DATA_LOSS, errors.Internal, False),
        (grpc.StatusCode.UNIMPLEMENTED, errors.Internal, False),
        (grpc.StatusCode.UNAUTHENTICATED, errors.Internal, False),
        (grpc.StatusCode.OUT_OF_RANGE, errors.Internal, False),
    ],
)
def test_only_trouble_that_passes_is_retryable(code, kind, retryable):
    error = status.from_rpc_error(_failed_call(code))
    assert type(error) is kind
    assert error.retryable is retryable


async def test_an_answer_naming_a_thousand_bad_fields_still_reaches_the_caller(call):
    # 101 lines with three bad fields each once came back as RESOURCE_EXHAUSTED: the client
    # refused trailers past grpc's 16 KiB metadata limit.
    error = errors.InvalidArgument(
        [
            errors.FieldViolation(f"lines[{i}].product_id", "must be " + "é" * 60)
            for i in range(1000)
        ]
    )
    failed = await call(error)
    assert failed.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert len(failed.details()) <= status.MAX_MESSAGE_CHARS
    back = status.from_rpc_error(failed)
    assert isinstance(back, errors.InvalidArgument)
    assert back.violations[0].field == "lines[0].product_id"
    shown = len(back.violations) - 1
    assert 10 < shown < 1000
    assert back.violations[-1] == errors.FieldViolation(
        "request", f"{1000 - shown} more violations not shown"
    )


async def test_unauthenticated_and_resource_exhausted_carry_their_code_and_retry_delay(call):
    rpc_error = await call(errors.Unauthenticated("sign in", reason="TOKEN_EXPIRED"))
    assert rpc_error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert rpc_error.details() == "sign in"

    rpc_error = await call(errors.ResourceExhausted("too many failed sign-ins", 2.5))
    assert rpc_error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    rich = rpc_status.from_call(rpc_error)
    assert rich is not None
    (detail,) = rich.details
    retry = error_details_pb2.RetryInfo()
    assert detail.Unpack(retry)
    assert retry.retry_delay.ToTimedelta().total_seconds() == 2.5
