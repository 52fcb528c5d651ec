"""Request validation (user.proto's rules plus the entrypoint's) and conversion, no server."""

import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from shop.user.v1 import user_pb2
from shop_grpc.errors import InvalidArgument
from shop_grpc.validation import Violations, field_violations
from shop_user.entrypoints import grpc as entry

USER_ID = "0b0e7c1e-2c4e-4c59-9a8a-0f6a7d1c2b3a"


def create_request(**user) -> user_pb2.CreateUserRequest:
    fields = {"username": "alice", "email": "alice@example.com", "display_name": "Alice"}
    return user_pb2.CreateUserRequest(
        user=user_pb2.User(**{**fields, **user}), password="password1"
    )


def fields_of(check, request) -> dict[str, str]:
    """Every violation the server reports: the .proto's rules, then the entrypoint's check."""
    v = Violations()
    v.items.extend(field_violations(request))
    check(v, request)
    return {item.field: item.description for item in v.items}


def create_fields(**user) -> set[str]:
    return set(fields_of(entry.check_create, create_request(**user)))


@pytest.mark.parametrize("username", ["abc", "alice", "a.b_c-d", "0123", "x" * 32])
def test_good_usernames_pass(username):
    assert create_fields(username=username) == set()


@pytest.mark.parametrize(
    "username", ["", "ab", "x" * 33, "Alice", "al ice", "al@ce", "ünï", "alice\n", "al\x00ce"]
)
def test_bad_usernames_are_violations(username):
    assert create_fields(username=username) == {"user.username"}


@pytest.mark.parametrize("email", ["a@b.co", "Alice.Smith+tag@Example.COM", "x@mail.example.org"])
def test_good_emails_pass(email):
    assert create_fields(email=email) == set()


@pytest.mark.parametrize(
    "email",
    ["", "alice", "alice@", "@example.com", "a b@example.com", "a@@b.co", "a@b..co", "a@b.co\n"],
)
def test_bad_emails_are_violations(email):
    assert create_fields(email=email) == {"user.email"}


def test_email_longer_than_254_is_a_violation():
    # DNS labels are at most 63 characters, so the domain takes three of them.
    email = "a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 57 + ".com"
    assert len(email) == 254
    assert create_fields(email=email) == set()
    assert create_fields(email="a" + email) == {"user.email"}


@pytest.mark.parametrize(
    ("display_name", "ok"),
    [("", True), ("x" * 100, True), ("Zoë 🙂", True), ("x" * 101, False), ("a\x00b", False)],
)
def test_display_name_is_one_line_of_at_most_100_characters(display_name, ok):
    assert (create_fields(display_name=display_name) == set()) is ok


@pytest.mark.parametrize(
    ("password", "ok"),
    [("", False), ("x" * 7, False), ("x" * 8, True), ("x" * 128, True), ("x" * 129, False)],
)
def test_password_length_is_8_to_128(password, ok):
    request = create_request()
    request.password = password
    assert (fields_of(entry.check_create, request) == {}) is ok


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
    request = user_pb2.CreateUserRequest(password="password1")
    assert fields_of(entry.check_create, request) == {
        "user": "value is required",
        "user.username": "is required",
        "user.email": "is required",
    }


def test_update_mask_must_name_known_fields():
    empty = user_pb2.UpdateUserRequest(user=user_pb2.User(user_id=USER_ID))
    assert set(fields_of(entry.check_update, empty)) == {"update_mask"}
    unknown = user_pb2.UpdateUserRequest(
        user=user_pb2.User(user_id=USER_ID, username="bob"),
        update_mask=FieldMask(paths=["username", "password"]),
    )
    assert set(fields_of(entry.check_update, unknown)) == {"update_mask"}


def test_update_requires_only_the_masked_values():
    request = user_pb2.UpdateUserRequest(
        user=user_pb2.User(user_id=USER_ID, email="x@example.com"),
        update_mask=FieldMask(paths=["email", "display_name"]),
    )
    assert fields_of(entry.check_update, request) == {}
    request.update_mask.paths.append("username")
    assert fields_of(entry.check_update, request) == {"user.username": "is required"}


def test_every_field_sent_must_be_valid_even_outside_the_mask():
    # The server never issues a bad value, so a bad one is a client's bug, masked or not.
    request = user_pb2.UpdateUserRequest(
        user=user_pb2.User(user_id=USER_ID, username="BAD NAME", email="x@example.com"),
        update_mask=FieldMask(paths=["email"]),
    )
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
    # What the server reports: each message's .proto rules as it arrives, then the batch's.
    found = {v.field for i, e in enumerate(entries) for v in field_violations(e, f"requests[{i}].")}
    with pytest.raises(InvalidArgument) as info:
        entry.check_batch(entries)
    found |= {v.field for v in info.value.violations}
    assert found == {
        "requests[3].request.user.email",
        "requests[4].request.request_id",
        "requests[5].request",
        "requests[5].request.user.username",
        "requests[5].request.user.email",
    }
