"""Request validation and conversion in the gRPC entrypoint, without a server."""

import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from shop.user.v1 import user_pb2
from shop_grpc.errors import InvalidArgument
from shop_grpc.validation import Violations
from shop_user.entrypoints import grpc as entry

USER_ID = "0b0e7c1e-2c4e-4c59-9a8a-0f6a7d1c2b3a"


def create_request(**user) -> user_pb2.CreateUserRequest:
    fields = {"username": "alice", "email": "alice@example.com", "display_name": "Alice"}
    return user_pb2.CreateUserRequest(
        user=user_pb2.User(**{**fields, **user}), password="password1"
    )


def fields_of(check, *args) -> dict[str, str]:
    v = Violations()
    check(v, *args)
    return {item.field: item.description for item in v.items}


def test_a_good_create_request_has_no_violations():
    assert fields_of(entry.check_create, create_request()) == {}


def test_every_bad_create_field_is_reported_at_once():
    request = create_request(username="A", email="nope", display_name="x" * 101)
    request.password = "short"
    request.request_id = "r" * 65
    assert set(fields_of(entry.check_create, request)) == {
        "user.username",
        "user.email",
        "user.display_name",
        "password",
        "request_id",
    }


def test_missing_user_is_one_violation():
    assert set(fields_of(entry.check_create, user_pb2.CreateUserRequest(password="password1"))) == {
        "user"
    }


def test_update_mask_must_name_known_fields():
    empty = user_pb2.UpdateUserRequest(user=user_pb2.User(user_id=USER_ID))
    assert set(fields_of(entry.check_update, empty)) == {"update_mask"}
    unknown = user_pb2.UpdateUserRequest(
        user=user_pb2.User(user_id=USER_ID, username="bob"),
        update_mask=FieldMask(paths=["username", "password"]),
    )
    assert set(fields_of(entry.check_update, unknown)) == {"update_mask"}


def test_update_validates_only_the_masked_values():
    request = user_pb2.UpdateUserRequest(
        user=user_pb2.User(user_id=USER_ID, username="BAD NAME", email="x@example.com"),
        update_mask=FieldMask(paths=["email"]),
    )
    assert fields_of(entry.check_update, request) == {}
    request.update_mask.paths.append("username")
    assert set(fields_of(entry.check_update, request)) == {"user.username"}


def test_changes_carry_only_masked_fields():
    request = user_pb2.UpdateUserRequest(
        user=user_pb2.User(user_id=USER_ID, username="bob", display_name=""),
        update_mask=FieldMask(paths=["display_name"]),
    )
    changes = entry.changes_of(request)
    assert (changes.username, changes.email, changes.display_name) == (None, None, "")


def test_batch_violations_are_named_by_entry():
    entries = [
        user_pb2.BatchCreateUsersRequest(
            request=create_request(username=f"user{i}", email=f"u{i}@x.io")
        )
        for i in range(5)
    ]
    entries[3].request.user.email = "broken"
    entries[4].request.request_id = entries[1].request.request_id = "same"
    entries.append(user_pb2.BatchCreateUsersRequest())
    with pytest.raises(InvalidArgument) as info:
        entry.check_batch(entries)
    assert {v.field for v in info.value.violations} == {
        "requests[3].request.user.email",
        "requests[4].request.request_id",
        "requests[5].request",
    }
