"""Two customers on the running suite, through the `shop` CLI: each signs in, places orders,
and sees and acts on their own orders only; the operator still sees everyone's."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from shop.user.v1 import user_pb2

PASSWORD = "correct horse battery"


def cli(
    *args: str, token_file: Path | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ}
    env.pop("SHOP_TOKEN_FILE", None)
    if token_file is not None:
        env["SHOP_TOKEN_FILE"] = str(token_file)
    else:
        # The operator: no token where the CLI looks by default either (a developer's own
        # `shop login` may have left one in .shop/token).
        env["SHOP_DATA_DIR"] = tempfile.mkdtemp(prefix="shop-no-token-")
    return subprocess.run(
        [sys.executable, "-m", "shop_cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


async def test_two_customers_each_see_and_act_on_only_their_own_orders(suite, shop, tmp_path):
    client = f"--tls-dir={suite.certs_dir / 'client'}"
    order_flag = f"--order={suite.endpoints()['order']}"
    user_flag = f"--user={suite.endpoints()['user']}"
    product = await shop.product(stock=10)
    names = {name: f"{name}{uuid.uuid4().hex[:8]}" for name in ("ann", "ben")}
    ids = {name: await create(shop, username) for name, username in names.items()}
    tokens = {name: tmp_path / f"{name}.token" for name in names}

    for name, username in names.items():
        # The password on standard input, where other users of the machine cannot see it.
        signed_in = ok(
            cli(
                "login",
                username,
                "--password-stdin",
                user_flag,
                client,
                token_file=tokens[name],
                stdin=f"{PASSWORD}\n",
            )
        )
        assert signed_in.strip() == ids[name]
        assert stat.S_IMODE(tokens[name].stat().st_mode) == 0o600

    placed = {}
    for name in names:
        # Ann names herself; Ben leaves it to his sign-in.
        myself = [f"--user={ids[name]}"] if name == "ann" else []
        out = ok(
            cli(
                "orders",
                "place",
                *myself,
                f"--item={product}=1",
                "--json",
                order_flag,
                client,
                token_file=tokens[name],
            )
        )
        assert '"STATUS_CONFIRMED"' in out
        placed[name] = _field(out, "orderId")

    # Each lists only their own.
    for name, other in (("ann", "ben"), ("ben", "ann")):
        mine = ok(
            cli(
                "orders",
                "list",
                f"--user={ids[name]}",
                "--json",
                order_flag,
                client,
                token_file=tokens[name],
            )
        )
        assert placed[name] in mine and placed[other] not in mine
        # Another's list is refused; another's order is not found, to read or to cancel.
        theirs = cli(
            "orders", "list", f"--user={ids[other]}", order_flag, client, token_file=tokens[name]
        )
        assert theirs.returncode == 1 and "PERMISSION_DENIED" in theirs.stderr
        for action in ("get", "cancel", "watch"):
            refused = cli(
                "orders", action, placed[other], order_flag, client, token_file=tokens[name]
            )
            assert refused.returncode == 1 and "NOT_FOUND" in refused.stderr, refused.stderr

    # The operator (the client certificate, no token) still sees both.
    for name in names:
        seen = ok(cli("orders", "get", placed[name], "--json", order_flag, client))
        assert '"STATUS_CONFIRMED"' in seen  # nobody's cancel went through
    # Without a sign-in, a command that names a customer needs one named.
    unnamed = cli("orders", "list", order_flag, client)
    assert unnamed.returncode == 1 and "--user ID is required" in unnamed.stderr


async def test_a_wrong_password_is_refused_and_stores_nothing(suite, shop, tmp_path):
    username = f"cat{uuid.uuid4().hex[:8]}"
    await create(shop, username)
    token = tmp_path / "token"

    refused = cli(
        "login",
        username,
        "--password=not the password",
        f"--user={suite.endpoints()['user']}",
        f"--tls-dir={suite.certs_dir / 'client'}",
        token_file=token,
    )

    assert refused.returncode == 1 and "UNAUTHENTICATED" in refused.stderr
    assert not token.exists()


async def create(shop, username: str) -> str:
    user = await shop.users.CreateUser(
        user_pb2.CreateUserRequest(
            user=user_pb2.User(username=username, email=f"{username}@example.com"),
            password=PASSWORD,
        ),
        timeout=10,
    )
    return str(user.user_id)


def _field(json_text: str, name: str) -> str:
    return str(json.loads(json_text)[name])
