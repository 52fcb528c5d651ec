"""The error tree: the status code each error travels as, which of them are worth repeating,
and the messages a caller reads (shop_grpc.errors)."""

from __future__ import annotations

import pytest

from shop_grpc import errors


def every_error() -> list[type[errors.ShopError]]:
    found, todo = [], [errors.ShopError]
    while todo:
        kinds = todo.pop().__subclasses__()
        found += kinds
        todo += kinds
    return [kind for kind in found if kind.__module__ == errors.__name__]


def test_each_error_travels_as_its_own_code():
    codes = {kind.__name__: kind.code for kind in every_error()}

    assert codes == {
        "InvalidArgument": "INVALID_ARGUMENT",
        "NotFound": "NOT_FOUND",
        "AlreadyExists": "ALREADY_EXISTS",
        "FailedPrecondition": "FAILED_PRECONDITION",
        "PermissionDenied": "PERMISSION_DENIED",
        "Unauthenticated": "UNAUTHENTICATED",
        "ResourceExhausted": "RESOURCE_EXHAUSTED",
        "Internal": "INTERNAL",
        "Aborted": "ABORTED",
        "Unavailable": "UNAVAILABLE",
        "DeadlineExceeded": "DEADLINE_EXCEEDED",
    }
    assert errors.ShopError.code == "UNKNOWN"


def test_only_a_concurrent_change_an_unreachable_dependency_or_a_timeout_is_retryable():
    retryable = {kind.__name__ for kind in every_error() if kind.retryable}

    assert retryable == {"Aborted", "Unavailable", "DeadlineExceeded"}
    assert not errors.ShopError.retryable


def test_invalid_argument_names_every_bad_field_unless_given_a_message():
    bad = [errors.FieldViolation("sku", "must not be empty"), errors.FieldViolation("q", "< 1")]

    assert errors.InvalidArgument(bad).message == "invalid request: sku: must not be empty; q: < 1"
    assert errors.InvalidArgument(bad, "two fields").message == "two fields"
    assert errors.InvalidArgument(bad).violations == bad


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (errors.NotFound("order", "o-1"), "order 'o-1' not found"),
        (errors.AlreadyExists("user", "ann"), "user 'ann' already exists"),
        (errors.AlreadyExists("user", "ann", "taken"), "taken"),
    ],
)
def test_a_named_resource_is_in_the_message_and_kept_apart(error, message):
    assert error.message == str(error) == message
    assert (error.resource_type, error.resource_name) in {("order", "o-1"), ("user", "ann")}


def test_a_reason_and_the_details_a_caller_acts_on_are_kept():
    short = [errors.PreconditionViolation("STOCK", "widget", "2 left")]
    refused = errors.FailedPrecondition("out of stock", short, reason="OUT_OF_STOCK")
    throttled = errors.ResourceExhausted("slow down", 30.0, reason="TOO_MANY_SIGN_INS")

    assert (refused.reason, refused.violations) == ("OUT_OF_STOCK", short)
    assert errors.FailedPrecondition("closed").violations == []
    assert (throttled.reason, throttled.retry_after_seconds) == ("TOO_MANY_SIGN_INS", 30.0)
    assert errors.Unavailable("down").reason == ""
