import argparse
import os
import subprocess
import sys

import pytest

from shop_cli.__main__ import build_parser, run
from shop_cli.arguments import expiry, quantity_pair, request_id
from shop_cli.targets import CLIENT_SERVICES, target_of
from shop_grpc import registry


def parse(*argv):
    return build_parser().parse_args(list(argv))


def test_users_create_takes_username_and_options():
    args = parse("users", "create", "alice", "--email", "a@example.com", "--display-name", "Al")
    assert (args.username, args.email, args.display_name) == ("alice", "a@example.com", "Al")
    assert args.timeout == 10.0
    assert args.json is False


def test_orders_place_collects_items_and_card():
    args = parse(
        "orders", "place", "--user", "u1", "--item", "w=1", "--item", "g=2",
        "--card", "4000000000000002", "--exp", "12/2030", "--cvc", "999", "--no-wait",
    )  # fmt: skip
    assert args.user_id == "u1"
    assert args.items == [("w", 1), ("g", 2)]
    assert (args.card, args.exp, args.cvc) == ("4000000000000002", (12, 2030), "999")
    assert args.wait is False


def test_orders_place_waits_by_default_with_the_approved_test_card():
    args = parse("orders", "place", "--user", "u1", "--item", "w=1")
    assert args.wait is True
    assert args.card == "4242424242424242"


def test_stock_import_parses_each_line():
    args = parse("stock", "import", "a=5", "b=10", "--request-id", "r1")
    assert args.lines == [("a", 5), ("b", 10)]
    assert request_id(args) == "r1"


def test_request_id_is_a_fresh_uuid_unless_given():
    args = parse("users", "delete", "u1")
    first, second = request_id(args), request_id(args)
    assert first != second
    assert len(first) == 36


def test_products_create_price_is_minor_units():
    args = parse("products", "create", "w", "--title", "Widget", "--price", "19.99")
    assert (args.price, args.currency) == (1999, "USD")


@pytest.mark.parametrize("text", ["w", "=3", "w=0", "w=-1", "w=x"])
def test_quantity_pair_rejects_malformed_lines(text):
    with pytest.raises(argparse.ArgumentTypeError):
        quantity_pair(text)


def test_expiry_accepts_two_and_four_digit_years():
    assert expiry("03/2031") == (3, 2031)
    assert expiry("3/31") == (3, 2031)
    for bad in ["13/2030", "0/2030", "2030", "ab/cd"]:
        with pytest.raises(argparse.ArgumentTypeError):
            expiry(bad)


def test_bad_arguments_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        run(["orders", "place", "--user", "u1", "--item", "w=0"])
    assert exit_info.value.code == 2
    assert "quantity" in capsys.readouterr().err


def test_targets_come_from_flag_then_environment_then_default_port():
    flagged = parse("users", "get", "u1", "--user", "users.example:1234")
    assert target_of(flagged, "user", {"SHOP_USER_TARGET": "env:1"}) == "users.example:1234"
    plain = parse("users", "get", "u1")
    assert target_of(plain, "user", {"SHOP_USER_TARGET": "env:1"}) == "env:1"
    assert target_of(plain, "user", {}) == "127.0.0.1:50054"
    assert target_of(parse("stock", "get", "w"), "inventory", {}) == "127.0.0.1:50052"


@pytest.mark.parametrize("command", ["demo", "bench"])
def test_demo_and_bench_take_every_address_where_one_service_is_installed(monkeypatch, command):
    # In a service's image `shop` sits beside that service alone, and the chart's test pod runs
    # `shop demo` there against all of them.
    only_order = {"order": registry.services()["order"]}
    monkeypatch.setattr(registry, "services", lambda: only_order)
    addresses = {svc: f"{svc}.shop.svc:50051" for svc in CLIENT_SERVICES}
    args = parse(command, *(arg for svc, at in addresses.items() for arg in (f"--{svc}", at)))
    assert {svc: target_of(args, svc, {}) for svc in addresses} == addresses
    assert "user" in addresses  # a service not installed here


def test_bench_alone_loads_the_suite_and_bench_rpc_runs_the_rpc_benchmark():
    suite = parse("bench", "--clients", "2", "--duration", "5", "--data-dir", "elsewhere")
    assert suite.benchmark is None
    assert suite.parser.prog == "shop bench"
    assert (suite.clients, suite.duration, str(suite.data_dir)) == (2, 5.0, "elsewhere")
    assert parse("bench").data_dir is None  # $SHOP_DATA_DIR, else .shop (test_cli_tls)
    rpc = parse("bench", "rpc", "--concurrency", "3", "--duration", "4", "--rounds", "2")
    assert rpc.benchmark == "rpc"
    assert rpc.parser.prog == "shop bench rpc"
    assert (rpc.concurrency, rpc.duration, rpc.rounds) == (3, 4.0, 2)
    assert rpc.handler is not suite.handler


def test_orders_user_flag_is_the_user_id_not_a_target():
    args = parse("orders", "list", "--user", "u1", "--order", "orders:1")
    assert args.user_id == "u1"
    assert target_of(args, "order", {}) == "orders:1"


def test_unreachable_service_prints_status_code_and_exits_1(capsys):
    code = run(["users", "get", "u1", "--user", "127.0.0.1:1", "--timeout", "0.5", "--insecure"])
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: UNAVAILABLE: ") or err.startswith("error: DEADLINE_EXCEEDED")


def test_without_a_client_certificate_the_cli_says_how_to_get_one(capsys, tmp_path):
    code = run(["users", "get", "u1", "--tls-dir", str(tmp_path)])
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: no client certificate in {tmp_path}")
    assert "shop certs init" in err


def test_without_a_terminal_a_missing_password_is_an_error_not_a_prompt(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "SHOP_PASSWORD"}
    flags = ["--email", "someone@example.com", "--user", "127.0.0.1:1", "--insecure"]
    result = subprocess.run(
        [sys.executable, "-m", "shop_cli", "users", "create", "someone", *flags],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        # No controlling terminal, as under cron or in a pipeline.
        start_new_session=True,
    )
    assert result.returncode == 1
    assert "a password is required" in result.stderr
    assert "Traceback" not in result.stderr and "Warning" not in result.stderr


def test_a_reader_that_goes_away_ends_the_command_quietly():
    # `shop orders list | head -1`: the pipe closes while the command still prints.
    script = """
import argparse, sys
from shop_cli import __main__ as cli

def build():
    parser = argparse.ArgumentParser()
    parser.set_defaults(handler=lambda args: [print("x" * 80) for _ in range(100_000)] and 0)
    parser.set_defaults(parser=parser)
    return parser

cli.build_parser = build
sys.exit(cli.run([]))
"""
    reader = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert reader.stdout is not None and reader.stderr is not None
    reader.stdout.readline()
    reader.stdout.close()
    errors = reader.stderr.read()
    assert reader.wait(timeout=30) == 141
    assert b"Traceback" not in errors and b"Exception" not in errors


def test_every_command_is_there_when_no_service_is_installed_beside_the_cli(
    monkeypatch, tmp_path, capsys
):
    # The CLI alone, in an image of its own, say: making its commands reads no service.
    monkeypatch.setattr(registry, "services", dict)

    assert parse("probe", "-addr=127.0.0.1:8081").arguments == ["-addr=127.0.0.1:8081"]
    assert run(["up", "--data-dir", str(tmp_path)]) == 1
    assert "no service is installed" in capsys.readouterr().err
    assert not (tmp_path / "certs").exists()
