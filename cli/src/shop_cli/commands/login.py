"""`shop login` / `shop logout`: sign a customer in, so the order commands act for them."""

from __future__ import annotations

import argparse
import datetime
import os
import sys
from typing import Any

from shop.user.v1 import user_pb2
from shop_cli.arguments import add_timeout_flag, command, run_async
from shop_cli.commands.users import add_password_flags, password
from shop_cli.session import Session, token_file
from shop_cli.targets import Clients, add_target_flags


def register(subparsers: Any) -> None:
    login_p = command(
        subparsers,
        "login",
        run_async(login),
        "sign a customer in: the order commands then act for them (shop logout ends it); "
        "the token goes to $SHOP_TOKEN_FILE, else <data dir>/token, readable by you alone",
    )
    login_p.add_argument("login", metavar="USERNAME_OR_EMAIL")
    add_password_flags(login_p)
    add_target_flags(login_p, "user")
    add_timeout_flag(login_p)
    command(
        subparsers,
        "logout",
        logout,
        "forget the signed-in customer's token ($SHOP_TOKEN_FILE, else <data dir>/token)",
    )


async def sign_in(clients: Clients, login: str, secret: str, call_timeout: float) -> Session:
    """The session Login answers for `login` and `secret`."""
    answer = await clients.users.Login(
        user_pb2.LoginRequest(login=login, password=secret), timeout=call_timeout
    )
    return Session(
        answer.access_token, answer.user_id, answer.expire_time.ToDatetime(tzinfo=datetime.UTC)
    )


async def login(args: argparse.Namespace) -> int:
    async with Clients(args) as clients:
        session = await sign_in(clients, args.login, password(args), args.timeout)
    path = token_file(os.environ)
    session.save(path)
    print(
        f"signed in as {session.user_id} until {session.expire_time:%H:%M:%S} UTC "
        f"(token in {path})",
        file=sys.stderr,
    )
    print(session.user_id)
    return 0


def logout(args: argparse.Namespace) -> int:
    path = token_file(os.environ)
    try:
        path.unlink()
    except FileNotFoundError:
        print(f"nobody was signed in here (no token at {path})", file=sys.stderr)
        return 0
    print(f"signed out ({path} removed)", file=sys.stderr)
    return 0
