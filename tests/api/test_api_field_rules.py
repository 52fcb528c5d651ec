"""Every field a client can send has a rule, declared in the .proto beside it.

Walks every request message of every RPC of every service, and every message inside them, and
checks that each string field states a character rule and a length bound, each number a range
or a rule, and each repeated field a size bound: so no value can reach a handler, a database
or a log unchecked, and clients read the same rules through reflection.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from buf.validate import validate_pb2
from google.protobuf import descriptor as d

from shop.common.v1 import rules_pb2
from shop.inventory.v1 import inventory_pb2
from shop.order.v1 import order_pb2
from shop.payment.v1 import payment_pb2
from shop.user.v1 import user_pb2
from shop_grpc.testing import generated_services
from shop_grpc.validation import field_violations

SERVICES = generated_services()
# Output-only fields that sit in resources a request also carries: the server ignores them.
IGNORED = {
    "shop.user.v1.User.create_time",
    "shop.user.v1.User.update_time",
    "shop.inventory.v1.Product.create_time",
}
# Messages of the platform, whose fields are checked where they are used (a FieldMask's paths
# by the mask's own rule).
PLATFORM = ("google.protobuf.",)
SHARED_STRING_RULES = [
    rules_pb2.server_id,
    rules_pb2.product_id,
    rules_pb2.request_id,
    rules_pb2.page_token,
]


def request_fields() -> Iterator[d.FieldDescriptor]:
    seen: set[str] = set()
    pending = [m.input_type for service in SERVICES for m in service.methods]
    while pending:
        message = pending.pop()
        if message.full_name in seen or message.full_name.startswith(PLATFORM):
            continue
        seen.add(message.full_name)
        for field in message.fields:
            if field.full_name in IGNORED:
                continue
            yield field
            if field.message_type is not None:
                pending.append(field.message_type)


def rules_of(field: d.FieldDescriptor) -> validate_pb2.FieldRules:
    return field.GetOptions().Extensions[validate_pb2.field]


FIELDS = sorted(request_fields(), key=lambda f: f.full_name)


@pytest.mark.parametrize("field", FIELDS, ids=[f.full_name for f in FIELDS])
def test_every_request_field_states_its_rule(field: d.FieldDescriptor) -> None:
    rules = rules_of(field)
    if field.is_repeated:
        assert rules.repeated.HasField("max_items") or rules.cel, "no size bound"
        items = rules.repeated.items
        if field.type == d.FieldDescriptor.TYPE_STRING:
            assert items.string.ListFields(), "no rule for each item"
        return
    if field.type == d.FieldDescriptor.TYPE_STRING:
        shared = any(rules.string.HasExtension(rule) for rule in SHARED_STRING_RULES)
        bounded = shared or rules.string.HasField("max_len") or rules.cel
        assert bounded, "a string with no length bound"
        text = rules.string.HasExtension(rules_pb2.single_line) or rules.string.HasExtension(
            rules_pb2.multi_line
        )
        assert shared or text or rules.cel or rules.string.email, "no character rule"
    elif field.type == d.FieldDescriptor.TYPE_MESSAGE:
        return  # its own fields are walked; whether it is required is the request's choice
    elif field.type == d.FieldDescriptor.TYPE_BOOL:
        return
    else:
        assert rules.ListFields(), "a number with no range"


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("0b6e7d3c-9a51-4c8f-8f2e-5d0f3c2a1b9e", True),
        ("0B6E7D3C-9A51-4C8F-8F2E-5D0F3C2A1B9E", False),
        ("0b6e7d3c-9a51-4c8f-8f2e-5d0f3c2a1b9e\n", False),
        ("bob", False),
        (" ", False),
        ("é", False),
        ("", False),
    ],
)
def test_ids_the_services_issue_are_lower_case_uuids_everywhere(value: str, ok: bool) -> None:
    # The same rule on the id a request names and on the one another service checks it with.
    for request in (
        order_pb2.GetOrderRequest(order_id=value),
        user_pb2.GetUserRequest(user_id=value),
        payment_pb2.GetPaymentRequest(payment_id=value),
        inventory_pb2.GetReservationRequest(order_id=value),
    ):
        assert (field_violations(request) == []) is ok, request
