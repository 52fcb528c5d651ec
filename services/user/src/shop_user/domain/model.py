"""Users, the rules their fields follow, and the change log entries they produce."""

from __future__ import annotations

import enum
import re
import uuid
from dataclasses import dataclass, replace
from datetime import datetime

from shop_grpc.validation import Violations

USERNAME = re.compile(r"[a-z0-9._-]{3,32}")
# Deliberately simple: one @, no spaces, a dotted domain. Deliverability is the
# mail system's job, not a regular expression's.
EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")
MAX_EMAIL = 254
MAX_DISPLAY_NAME = 100
MIN_PASSWORD = 8
MAX_PASSWORD = 128
UPDATABLE_FIELDS = ("username", "email", "display_name")


def normalize_email(email: str) -> str:
    """Emails are unique case-insensitively, so they are stored lower-cased."""
    return email.lower()


def check_username(v: Violations, value: str, field: str) -> None:
    v.matches(value, USERNAME, field, "3 to 32 characters of a-z, 0-9, '.', '_' or '-'")


def check_email(v: Violations, value: str, field: str) -> None:
    if not v.required(value, field):
        return
    if v.check(len(value) <= MAX_EMAIL, field, f"must be at most {MAX_EMAIL} characters long"):
        v.check(bool(EMAIL.fullmatch(value)), field, "must be an email address like a@example.com")


def check_display_name(v: Violations, value: str, field: str) -> None:
    v.check(
        len(value) <= MAX_DISPLAY_NAME,
        field,
        f"must be at most {MAX_DISPLAY_NAME} characters long",
    )


def check_password(v: Violations, value: str, field: str) -> None:
    v.length(value, field, low=MIN_PASSWORD, high=MAX_PASSWORD)


@dataclass(frozen=True)
class Profile:
    """What a caller chooses about a user; everything else the service assigns."""

    username: str
    email: str
    display_name: str

    def normalized(self) -> Profile:
        return replace(self, email=normalize_email(self.email))


@dataclass(frozen=True)
class NewUser:
    """One user to create. The password is excluded from repr so it never reaches a log."""

    profile: Profile
    password: str = ""
    request_id: str = ""

    def __repr__(self) -> str:
        return f"NewUser(profile={self.profile!r}, request_id={self.request_id!r})"


@dataclass(frozen=True)
class User:
    user_id: str
    username: str
    email: str
    display_name: str
    create_time: datetime
    update_time: datetime

    @classmethod
    def create(cls, profile: Profile, now: datetime) -> User:
        profile = profile.normalized()
        return cls(
            user_id=str(uuid.uuid4()),
            username=profile.username,
            email=profile.email,
            display_name=profile.display_name,
            create_time=now,
            update_time=now,
        )

    def changed(self, changes: Changes, now: datetime) -> User:
        return replace(
            self,
            username=self.username if changes.username is None else changes.username,
            email=self.email if changes.email is None else normalize_email(changes.email),
            display_name=self.display_name
            if changes.display_name is None
            else changes.display_name,
            update_time=now,
        )


@dataclass(frozen=True)
class Changes:
    """New values for the fields an update names; None leaves a field as it is."""

    username: str | None = None
    email: str | None = None
    display_name: str | None = None


class EventKind(enum.Enum):
    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"


@dataclass(frozen=True)
class UserEvent:
    """One entry of the change log; ``user`` is the state after the change."""

    sequence: int
    kind: EventKind
    user: User
    event_time: datetime
