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
    fingerprint: str = ""
    """Of the request that asked for it, without the password (shop_grpc.idempotency)."""

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
class RecordedRequest:
    """The change a request_id was first used for, and what that request said."""

    kind: EventKind
    user: User
    fingerprint: str | None
    """None for a change recorded before fingerprints were kept."""


@dataclass(frozen=True)
class UserEvent:
    """One entry of the change log; ``user`` is the state after the change."""

    sequence: int
    kind: EventKind
    user: User
    event_time: datetime
