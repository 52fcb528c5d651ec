"""The unique constraints behind the checks, on SQLite and PostgreSQL."""

from functools import partial

import pytest

from shop_grpc.changes import ChangeSignal
from shop_user.adapters.orm import metadata
from shop_user.adapters.repository import SqlUserRepository
from shop_user.adapters.unit_of_work import SqlUnitOfWork
from shop_user.domain.errors import UserTaken
from shop_user.domain.model import NewUser, Profile
from shop_user.service_layer import services


class BlindOnce(SqlUserRepository):
    """Misses existing holders once, as a check does when a concurrent insert is uncommitted."""

    blinded = False

    async def holders(self, usernames, emails):
        if not BlindOnce.blinded:
            BlindOnce.blinded = True
            return []
        return await super().holders(usernames, emails)


class BlindUnitOfWork(SqlUnitOfWork):
    def bind(self, session):
        self.users = BlindOnce(session, is_postgres=self.is_postgres)


async def test_a_unique_key_the_check_missed_is_already_exists(db):
    changes = ChangeSignal()
    await services.create_user(
        partial(SqlUnitOfWork, db, changes), NewUser(Profile("alice", "a@x.io", ""), "password1")
    )
    BlindOnce.blinded = False
    with pytest.raises(UserTaken) as info:
        await services.create_user(
            partial(BlindUnitOfWork, db, changes),
            NewUser(Profile("alice", "b@x.io", ""), "password1"),
        )
    assert info.value.resource_name == "username=alice"
    assert BlindOnce.blinded


async def test_migrating_twice_is_harmless(db):
    await db.migrate(metadata)
