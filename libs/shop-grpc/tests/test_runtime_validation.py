"""validation: a request breaking its .proto's rules gets one INVALID_ARGUMENT naming every bad
field by its path in the request, and the entrypoints' own rules report the same way."""

from __future__ import annotations

import pytest

from shop.common.v1 import money_pb2
from shop.order.v1 import order_pb2
from shop.payment.v1 import payment_pb2
from shop_grpc.errors import FieldViolation, InvalidArgument
from shop_grpc.validation import Violations, check_message, field_violations

ALICE = "0b0e7c1e-2c4e-4c59-9a8a-0f6a7d1c2b3a"
CARD = payment_pb2.PaymentCard(number="4242424242424242", exp_month=12, exp_year=2040, cvc="123")


def good_order() -> order_pb2.CreateOrderRequest:
    return order_pb2.CreateOrderRequest(
        user_id=ALICE, lines=[money_pb2.LineItem(product_id="widget", quantity=1)], card=CARD
    )


def test_every_broken_rule_is_a_violation_named_by_its_path_in_the_request():
    request = order_pb2.CreateOrderRequest(
        user_id="Alice",
        lines=[
            money_pb2.LineItem(product_id="widget", quantity=1),
            money_pb2.LineItem(product_id="widget", quantity=0),
        ],
    )

    violations = field_violations(request)

    assert [v.field for v in violations] == ["user_id", "lines", "lines[1].quantity", "card"]
    assert violations[-1].description == "value is required"


def test_a_prefix_names_the_fields_of_a_message_inside_a_larger_request():
    assert field_violations(order_pb2.CheckoutRequest(), "requests[2].") == [
        FieldViolation("requests[2].action", "exactly one field is required in oneof")
    ]


def test_check_message_passes_a_good_message_and_raises_one_error_for_a_bad_one():
    check_message(good_order())
    bad = good_order()
    bad.lines[0].quantity = 10_001
    bad.request_id = "x" * 65

    with pytest.raises(InvalidArgument) as raised:
        check_message(bad)

    assert [v.field for v in raised.value.violations] == ["lines[0].quantity", "request_id"]
    assert raised.value.message.startswith("invalid request: lines[0].quantity: ")


def test_checks_say_whether_they_passed_and_keep_only_the_failures_in_order():
    v = Violations()

    assert v.required("", "user.username") is False
    assert v.required("alice", "user.display_name") is True
    assert v.check(True, "user.email", "is fine") is True
    assert v.check(False, "update_mask", "names no field") is False
    v.add("password", "is too short")

    assert v.items == [
        FieldViolation("user.username", "is required"),
        FieldViolation("update_mask", "names no field"),
        FieldViolation("password", "is too short"),
    ]


def validate_update(username: str, mask_names_a_field: bool) -> None:
    with Violations() as v:
        v.required(username, "user.username")
        v.check(mask_names_a_field, "update_mask", "names no field")


def test_leaving_raises_one_invalid_argument_naming_every_failure_or_nothing():
    validate_update("alice", mask_names_a_field=True)

    with pytest.raises(InvalidArgument) as raised:
        validate_update("", mask_names_a_field=False)

    assert [v.field for v in raised.value.violations] == ["user.username", "update_mask"]


def fail_while_checking() -> None:
    with Violations() as v:
        v.add("user_id", "must be a UUID")
        raise LookupError("the block's own error")


def test_an_error_raised_in_the_block_goes_first():
    with pytest.raises(LookupError, match="the block's own error"):
        fail_while_checking()
