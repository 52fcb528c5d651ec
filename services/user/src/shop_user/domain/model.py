"""Users, the rules their fields follow, and the change log entries they produce."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, replace
from datetime import datetime

UPDATABLE_FIELDS = ("username", "email", "display_name")
# Fields a user cannot be without; the shapes of all of them are rules in user.proto.
REQUIRED_FIELDS = ("username", "email")


def normalize_email(email: str) -> str:
    """Emails are unique case-insensitively, so they are stored lower-cased."""
    return email.lower()


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

    @property
    def profile(self) -> Profile:
        return Profile(self.username, self.email, self.display_name)

    def shows(self, changes: Changes) -> bool:
        """True if this user has every value `changes` sets (emails compared normalized)."""
        return self.changed(changes, self.update_time) == self

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
