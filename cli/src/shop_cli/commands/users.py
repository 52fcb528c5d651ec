"""`shop users ...`: accounts on the user service."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import Any

import grpc

from shop.user.v1 import user_pb2
from shop_cli import output, views
from shop_cli.arguments import (
    CliError,
    add_json_flag,
    add_request_id_flag,
    add_timeout_flag,
    command,
    positive_int,
    request_id,
    run_async,
)
from shop_cli.paging import PAGE_SIZE, collect
from shop_cli.targets import Clients, add_target_flags

PASSWORD_ENV = "SHOP_PASSWORD"
WATCH_TIMEOUT = 3600.0


def register(subparsers: Any) -> None:
    group = subparsers.add_parser("users", help="create, read, list, delete and watch users")
    sub = group.add_subparsers(dest="action", required=True, metavar="ACTION")

    create_p = command(sub, "create", run_async(create), "create a user")
    create_p.add_argument("username")
    create_p.add_argument("--email", required=True)
    create_p.add_argument("--display-name", default="")
    add_password_flags(create_p)
    add_request_id_flag(create_p)

    get_p = command(sub, "get", run_async(get), "show one user")
    get_p.add_argument("user_id", metavar="ID")

    list_p = command(sub, "list", run_async(list_users), "list users, oldest first")
    list_p.add_argument("--limit", type=positive_int, help="show at most this many")

    delete_p = command(sub, "delete", run_async(delete), "delete a user")
    delete_p.add_argument("user_id", metavar="ID")
    add_request_id_flag(delete_p)

    watch_p = command(sub, "watch", run_async(watch), "print user changes as they happen")
    watch_p.add_argument(
        "--after", type=int, default=0, metavar="SEQUENCE", help="replay changes after this one"
    )

    for parser in (create_p, get_p, list_p, delete_p, watch_p):
        add_target_flags(parser, "user")
        add_json_flag(parser)
        if parser is watch_p:
            add_timeout_flag(parser, WATCH_TIMEOUT, "the watch; it then ends normally")
        else:
            add_timeout_flag(parser)


def add_password_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--password",
        help=f"default: ${PASSWORD_ENV}, else asked for without echo (a password on the "
        "command line is visible to other users of the machine: prefer --password-stdin)",
    )
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input",
    )


def password(args: argparse.Namespace) -> str:
    """--password-stdin's line, else --password, else $SHOP_PASSWORD, else asked for at the
    terminal; CliError when none."""
    if args.password_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise CliError("--password-stdin: standard input held no password")
        return line
    value: str = args.password or os.environ.get(PASSWORD_ENV) or ""
    # Asked only at a terminal: elsewhere getpass would read a line of standard input, or
    # fail at its end, with warnings about echo either way.
    if not value and sys.stdin.isatty():
        value = getpass.getpass("password: ")
    if not value:
        raise CliError(
            f"a password is required: --password-stdin, --password, ${PASSWORD_ENV}, or a terminal"
        )
    return value


def show(args: argparse.Namespace, user: user_pb2.User) -> None:
    print(output.message_json(user) if args.json else views.user(user))


async def create(args: argparse.Namespace) -> int:
    request = user_pb2.CreateUserRequest(
        user=user_pb2.User(
            username=args.username, email=args.email, display_name=args.display_name
        ),
        password=password(args),
        request_id=request_id(args),
    )
    async with Clients(args) as clients:
        show(args, await clients.users.CreateUser(request, timeout=args.timeout))
    return 0


async def get(args: argparse.Namespace) -> int:
    async with Clients(args) as clients:
        request = user_pb2.GetUserRequest(user_id=args.user_id)
        show(args, await clients.users.GetUser(request, timeout=args.timeout))
    return 0


async def list_users(args: argparse.Namespace) -> int:
    async with Clients(args) as clients:

        async def fetch(token: str) -> tuple[list[user_pb2.User], str]:
            request = user_pb2.ListUsersRequest(page_size=PAGE_SIZE, page_token=token)
            page = await clients.users.ListUsers(request, timeout=args.timeout)
            return list(page.users), page.next_page_token

        found = await collect(fetch, args.limit)
    output.print_list(found, args.json, views.users)
    return 0


async def delete(args: argparse.Namespace) -> int:
    request = user_pb2.DeleteUserRequest(user_id=args.user_id, request_id=request_id(args))
    async with Clients(args) as clients:
        await clients.users.DeleteUser(request, timeout=args.timeout)
    if not args.json:
        print(f"deleted user {args.user_id}")
    else:
        print("{}")
    return 0


async def watch(args: argparse.Namespace) -> int:
    async with Clients(args) as clients:
        call = clients.users.WatchUsers(
            user_pb2.WatchUsersRequest(after_sequence=args.after), timeout=args.timeout
        )
        try:
            async for event in call:
                if args.json:
                    output.print_json_line(event)
                else:
                    print(views.user_event(event), flush=True)
        except grpc.aio.AioRpcError as exc:
            # The watch's own deadline is how it is meant to end.
            if exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                raise
    return 0
