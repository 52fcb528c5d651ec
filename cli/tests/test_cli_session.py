"""The stored session: where it lives, that only its owner can read it, and what a bad file
says."""

from __future__ import annotations

import datetime
import stat
from pathlib import Path

import pytest

from shop_cli.__main__ import run
from shop_cli.arguments import CliError
from shop_cli.session import Session, signed_in, token_file

EXPIRES = datetime.datetime(2030, 1, 1, 12, 0, tzinfo=datetime.UTC)


def test_the_token_file_is_shop_token_file_else_under_the_data_dir():
    assert token_file({"SHOP_TOKEN_FILE": "/x/t"}) == Path("/x/t")
    assert token_file({"SHOP_DATA_DIR": "/data"}) == Path("/data/token")
    assert token_file({}) == Path(".shop/token")


def test_a_saved_session_reads_back_and_only_its_owner_may_read_it(tmp_path):
    path = tmp_path / "dir" / "token"
    session = Session("header.claims.signature", "u-1", EXPIRES)

    session.save(path)

    assert Session.load(path) == session
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "header.claims.signature" not in repr(session)


def test_no_file_is_no_session_and_a_bad_one_is_an_error_naming_it(tmp_path):
    assert Session.load(tmp_path / "missing") is None
    (tmp_path / "bad").write_text("{not json")

    with pytest.raises(CliError, match="bad"):
        Session.load(tmp_path / "bad")


def test_a_token_file_named_in_the_environment_must_be_there(tmp_path):
    # Else a mistyped $SHOP_TOKEN_FILE would run a customer's command as the operator.
    assert signed_in({"SHOP_DATA_DIR": str(tmp_path)}) is None  # nobody signed in here
    with pytest.raises(CliError, match="SHOP_TOKEN_FILE"):
        signed_in({"SHOP_TOKEN_FILE": str(tmp_path / "typo")})
    session = Session("header.claims.signature", "u-1", EXPIRES)
    session.save(tmp_path / "token")
    assert signed_in({"SHOP_TOKEN_FILE": str(tmp_path / "token")}) == session


def test_logout_says_whether_anyone_was_signed_in(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SHOP_TOKEN_FILE", str(tmp_path / "token"))
    Session("header.claims.signature", "u-1", EXPIRES).save(tmp_path / "token")

    assert run(["logout"]) == 0
    assert "signed out" in capsys.readouterr().err
    assert not (tmp_path / "token").exists()
    assert run(["logout"]) == 0
    assert "nobody was signed in" in capsys.readouterr().err


def test_a_customers_token_sent_without_tls_is_warned_about(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SHOP_TOKEN_FILE", str(tmp_path / "token"))
    Session("header.claims.signature", "u-1", EXPIRES).save(tmp_path / "token")
    flags = ["--insecure", "--order", "127.0.0.1:1", "--timeout", "1"]

    assert run(["orders", "get", "o-1", *flags]) == 1  # nothing listens there

    err = capsys.readouterr().err
    assert "warning: sending the signed-in customer's token without TLS" in err
    assert "header.claims.signature" not in err
