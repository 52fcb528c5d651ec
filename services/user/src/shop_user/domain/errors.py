"""Errors of the user domain, each a branch of the shared error tree."""

from __future__ import annotations

from shop_grpc.errors import Aborted, AlreadyExists, NotFound

RESOURCE_TYPE = "user"


class UserNotFound(NotFound):
    def __init__(self, user_id: str) -> None:
        super().__init__(RESOURCE_TYPE, user_id)


class UserTaken(AlreadyExists):
    """A username or email another user (or another batch entry) already has.

    ``entry`` names the batch entry that clashed (``requests[3]``); ``other``
    the earlier entry of the same batch it clashed with, if any.
    """

    def __init__(self, field: str, value: str, *, entry: str = "", other: str = "") -> None:
        where = other or "another user"
        message = f"{field} {value!r} is already used by {where}"
        super().__init__(
            RESOURCE_TYPE, f"{field}={value}", f"{entry}: {message}" if entry else message
        )
        self.field = field
        self.value = value


class StorageConflict(Aborted):
    """A concurrent transaction committed a clashing row first; retrying sees it."""

    def __init__(self) -> None:
        super().__init__("a concurrent change to users won; retry the request")
