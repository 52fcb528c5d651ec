from datetime import UTC, datetime, timedelta

from shop_user.domain import model
from shop_user.domain.errors import UserTaken
from shop_user.domain.model import Changes, Profile, User

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


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
