from datetime import UTC, datetime, timedelta

import pytest

from shop_grpc.validation import Violations
from shop_user.domain import model
from shop_user.domain.errors import UserTaken
from shop_user.domain.model import Changes, Profile, User

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def problems(check, value: str) -> list[str]:
    v = Violations()
    check(v, value, "field")
    return [item.description for item in v.items]


@pytest.mark.parametrize("username", ["abc", "alice", "a.b_c-d", "0123", "x" * 32])
def test_good_usernames_pass(username):
    assert problems(model.check_username, username) == []


@pytest.mark.parametrize("username", ["", "ab", "x" * 33, "Alice", "al ice", "al@ce", "ünï"])
def test_bad_usernames_are_violations(username):
    assert problems(model.check_username, username)


@pytest.mark.parametrize("email", ["a@b.co", "Alice.Smith+tag@Example.COM", "x@mail.example.org"])
def test_good_emails_pass(email):
    assert problems(model.check_email, email) == []


@pytest.mark.parametrize(
    "email", ["", "alice", "alice@", "@example.com", "a b@example.com", "a@b", "a@@b.co", "a@b..co"]
)
def test_bad_emails_are_violations(email):
    assert problems(model.check_email, email)


def test_email_longer_than_254_is_a_violation():
    email = "a" * 64 + "@" + "b" * 185 + ".com"
    assert len(email) == 254
    assert problems(model.check_email, email) == []
    assert problems(model.check_email, "a" + email) == ["must be at most 254 characters long"]


def test_display_name_may_be_empty_but_not_longer_than_100():
    assert problems(model.check_display_name, "") == []
    assert problems(model.check_display_name, "x" * 100) == []
    assert problems(model.check_display_name, "x" * 101)


@pytest.mark.parametrize(
    ("password", "ok"),
    [("", False), ("x" * 7, False), ("x" * 8, True), ("x" * 128, True), ("x" * 129, False)],
)
def test_password_length_is_8_to_128(password, ok):
    assert (problems(model.check_password, password) == []) is ok


def test_new_user_gets_an_id_equal_times_and_a_lower_cased_email():
    user = User.create(Profile("alice", "Alice@Example.COM", "Alice"), NOW)
    assert user.email == "alice@example.com"
    assert user.create_time == user.update_time == NOW
    assert len(user.user_id) == 36
    assert User.create(Profile("bob", "b@x.io", ""), NOW).user_id != user.user_id


def test_changes_touch_only_the_named_fields_and_update_time():
    user = User.create(Profile("alice", "a@example.com", "Alice"), NOW)
    later = NOW + timedelta(seconds=5)
    changed = user.changed(Changes(email="NEW@Example.com"), later)
    assert changed.email == "new@example.com"
    assert (changed.username, changed.display_name) == ("alice", "Alice")
    assert changed.create_time == NOW
    assert changed.update_time == later


def test_new_user_repr_hides_the_password():
    new = model.NewUser(Profile("alice", "a@example.com", ""), "s3cret-password", "r1")
    assert "s3cret" not in repr(new)
    assert "s3cret" not in str(new)


def test_user_taken_names_the_key_and_the_batch_entries():
    error = UserTaken("email", "a@b.co", entry="requests[3]", other="requests[1]")
    assert error.resource_type == "user"
    assert error.resource_name == "email=a@b.co"
    assert error.message.startswith("requests[3]:")
    assert "requests[1]" in error.message
