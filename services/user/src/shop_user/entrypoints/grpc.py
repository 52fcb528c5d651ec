"""The gRPC face of the service: validates requests, converts proto <-> domain, calls use cases.

This is the only module that touches ``user_pb2``. Passwords go from the request
straight into a use case; they are never logged and never put into a response.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc

from shop.user.v1 import user_pb2, user_pb2_grpc
from shop_grpc import tokens
from shop_grpc.changes import ChangeSignal
from shop_grpc.errors import FieldViolation, InvalidArgument
from shop_grpc.idempotency import fingerprint
from shop_grpc.pagination import PageTokens
from shop_grpc.protoconv import timestamp
from shop_grpc.server import Registration
from shop_grpc.validation import Violations
from shop_user.domain import model
from shop_user.domain.model import Changes, EventKind, NewUser, Profile, User, UserEvent
from shop_user.service_layer import services, sign_in
from shop_user.service_layer.sign_in import Throttles
from shop_user.service_layer.unit_of_work import UnitOfWorkFactory
from shop_user.spec import SPEC

SERVICE_NAME = SPEC.full_name

_KINDS = {
    EventKind.CREATED: user_pb2.UserEvent.KIND_CREATED,
    EventKind.UPDATED: user_pb2.UserEvent.KIND_UPDATED,
    EventKind.DELETED: user_pb2.UserEvent.KIND_DELETED,
}


# --- validation ---------------------------------------------------------------------------


def check_create(v: Violations, request: user_pb2.CreateUserRequest, prefix: str = "") -> None:
    """What user.proto cannot say: a new user needs the fields an update may leave out.

    Adds a violation per missing field, named under `prefix` (``requests[3].request.``).
    """
    for name in model.REQUIRED_FIELDS:
        v.required(getattr(request.user, name), f"{prefix}user.{name}")


def check_update(v: Violations, request: user_pb2.UpdateUserRequest) -> None:
    """The user to update must be named, and a masked field the user needs cannot be emptied."""
    v.required(request.user.user_id, "user.user_id")
    for path in request.update_mask.paths:
        if path in model.REQUIRED_FIELDS:
            v.required(getattr(request.user, path), f"user.{path}")


def check_batch(entries: list[user_pb2.BatchCreateUsersRequest]) -> None:
    with Violations() as v:
        first_seen: dict[str, int] = {}
        for i, entry in enumerate(entries):
            prefix = f"requests[{i}].request"
            check_create(v, entry.request, f"{prefix}.")
            request_id = entry.request.request_id
            if request_id and request_id in first_seen:
                v.add(f"{prefix}.request_id", f"repeats requests[{first_seen[request_id]}]")
            first_seen.setdefault(request_id, i)


# --- conversion ---------------------------------------------------------------------------


def user_to_proto(user: User) -> user_pb2.User:
    return user_pb2.User(
        user_id=user.user_id,
        username=user.username,
        email=user.email,
        display_name=user.display_name,
        create_time=timestamp(user.create_time),
        update_time=timestamp(user.update_time),
    )


def event_to_proto(event: UserEvent) -> user_pb2.UserEvent:
    return user_pb2.UserEvent(
        sequence=event.sequence,
        kind=_KINDS[event.kind],
        user=user_to_proto(event.user),
        event_time=timestamp(event.event_time),
    )


def new_user(request: user_pb2.CreateUserRequest) -> NewUser:
    profile = Profile(request.user.username, request.user.email, request.user.display_name)
    key = fingerprint(request, redact=_without_password)
    return NewUser(profile, request.password, request.request_id, key)


def _without_password(request: user_pb2.CreateUserRequest) -> None:
    # A fast hash of a password next to the key would undo what scrypt protects.
    request.ClearField("password")


def changes_of(request: user_pb2.UpdateUserRequest) -> Changes:
    paths = set(request.update_mask.paths)
    values = {path: getattr(request.user, path) for path in model.UPDATABLE_FIELDS}
    return Changes(**{path: value for path, value in values.items() if path in paths})


def signed_in_to_proto(signed_in: sign_in.SignedIn) -> user_pb2.LoginResponse:
    return user_pb2.LoginResponse(
        access_token=signed_in.token.token,
        token_type="Bearer",
        expire_time=timestamp(signed_in.token.expire_time),
        user_id=signed_in.user_id,
    )


def jwks_to_proto(ring: tokens.KeyRing) -> user_pb2.JsonWebKeySet:
    fields = user_pb2.JsonWebKey.DESCRIPTOR.fields_by_name
    return user_pb2.JsonWebKeySet(
        keys=[
            user_pb2.JsonWebKey(**{k: v for k, v in jwk.items() if k in fields})
            for jwk in ring.jwks()["keys"]
        ]
    )


FORWARDED_FOR = "x-forwarded-for"
"""Where a front end that signs customers in names the client it acts for."""


def caller_address(context: grpc.aio.ServicerContext) -> str:
    """What a caller's failed sign-ins are counted by: the client's address.

    A front end calls Login for all its customers, so its own address would make them one
    caller, whom 50 failures from anyone would hold back. It says whose try it is in
    ``x-forwarded-for`` (the first address: the client, as de facto standard for HTTP
    proxies); that is believed because only holders of the suite's certificates reach this
    service. Without it, the peer's address without its port (``ipv4:10.0.0.7``).
    """
    for key, value in context.invocation_metadata() or ():
        if key == FORWARDED_FOR and isinstance(value, str):
            client = value.split(",", 1)[0].strip()
            if client:
                return f"forwarded:{client[:64]}"
    peer: str = context.peer()
    return peer.rpartition(":")[0] or peer


# --- the servicer -------------------------------------------------------------------------


@dataclass(frozen=True)
class SignIn:
    """What signing in needs: the signing keys and the failure counts."""

    keys: tokens.KeyDirectory
    throttles: Throttles


class UserServicer(user_pb2_grpc.UserServiceServicer):
    def __init__(
        self, uow: UnitOfWorkFactory, changes: ChangeSignal, tokens: PageTokens, signing: SignIn
    ) -> None:
        self.uow = uow
        self.changes = changes
        self.tokens = tokens
        self.signing = signing

    async def Login(
        self, request: user_pb2.LoginRequest, context: grpc.aio.ServicerContext
    ) -> user_pb2.LoginResponse:
        signed_in = await sign_in.login(
            self.uow,
            self.signing.keys,
            self.signing.throttles,
            request.login,
            request.password,
            caller_address(context),
        )
        return signed_in_to_proto(signed_in)

    async def GetJsonWebKeySet(
        self, request: user_pb2.GetJsonWebKeySetRequest, context: grpc.aio.ServicerContext
    ) -> user_pb2.JsonWebKeySet:
        return jwks_to_proto(self.signing.keys.ring())

    async def CreateUser(
        self, request: user_pb2.CreateUserRequest, context: grpc.aio.ServicerContext
    ) -> user_pb2.User:
        with Violations() as v:
            check_create(v, request)
        return user_to_proto(await services.create_user(self.uow, new_user(request)))

    async def GetUser(
        self, request: user_pb2.GetUserRequest, context: grpc.aio.ServicerContext
    ) -> user_pb2.User:
        return user_to_proto(await services.get_user(self.uow, request.user_id))

    async def UpdateUser(
        self, request: user_pb2.UpdateUserRequest, context: grpc.aio.ServicerContext
    ) -> user_pb2.User:
        with Violations() as v:
            check_update(v, request)
        user = await services.update_user(
            self.uow,
            request.user.user_id,
            changes_of(request),
            request.request_id,
            fingerprint(request),
        )
        return user_to_proto(user)

    async def DeleteUser(
        self, request: user_pb2.DeleteUserRequest, context: grpc.aio.ServicerContext
    ) -> user_pb2.DeleteUserResponse:
        await services.delete_user(
            self.uow, request.user_id, request.request_id, fingerprint(request)
        )
        return user_pb2.DeleteUserResponse()

    async def ListUsers(
        self, request: user_pb2.ListUsersRequest, context: grpc.aio.ServicerContext
    ) -> user_pb2.ListUsersResponse:
        page = await services.list_users(
            self.uow, self.tokens, request.page_size, request.page_token
        )
        users, token = page.fitted(user_to_proto)
        return user_pb2.ListUsersResponse(users=users, next_page_token=token)

    async def WatchUsers(
        self, request: user_pb2.WatchUsersRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[user_pb2.UserEvent]:
        events = services.watch_users(self.uow, self.changes.wait, request.after_sequence)
        async for event in events:
            yield event_to_proto(event)

    async def BatchCreateUsers(
        self,
        request_iterator: AsyncIterator[user_pb2.BatchCreateUsersRequest],
        context: grpc.aio.ServicerContext,
    ) -> user_pb2.BatchCreateUsersResponse:
        entries = await _read_batch(request_iterator)
        check_batch(entries)
        users = await services.batch_create_users(
            self.uow, [new_user(entry.request) for entry in entries]
        )
        return user_pb2.BatchCreateUsersResponse(users=[user_to_proto(user) for user in users])


async def _read_batch(
    request_iterator: AsyncIterator[user_pb2.BatchCreateUsersRequest],
) -> list[user_pb2.BatchCreateUsersRequest]:
    """The whole stream, refusing it as soon as it grows past the limit."""
    entries: list[user_pb2.BatchCreateUsersRequest] = []
    async for entry in request_iterator:
        if len(entries) == services.MAX_BATCH:
            raise InvalidArgument(
                [FieldViolation("requests", f"must have at most {services.MAX_BATCH} entries")]
            )
        entries.append(entry)
    return entries


def registration(
    uow: UnitOfWorkFactory, changes: ChangeSignal, tokens: PageTokens, signing: SignIn
) -> Registration:
    servicer = UserServicer(uow, changes, tokens, signing)
    return Registration(
        name=SERVICE_NAME,
        add_to=lambda server: user_pb2_grpc.add_UserServiceServicer_to_server(servicer, server),
    )
