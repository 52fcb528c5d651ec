"""Certificates and transport settings as the CLI hands them out."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509

from shop_cli.__main__ import build_parser, run
from shop_cli.arguments import CliError
from shop_cli.commands.up import _metrics_base_port, _probe_base_port, data_dir_hint
from shop_cli.suite import Suite
from shop_cli.tls import client_tls
from shop_grpc import registry
from shop_grpc.config import TlsSettings


def test_certs_init_writes_every_identity_and_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "certs"
    assert run(["certs", "init", "--namespace", "shop", "--out", str(out)]) == 0
    for identity in registry.identities():
        cert = x509.load_pem_x509_certificate((out / identity / "tls.crt").read_bytes())
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        uris = sans.get_values_for_type(x509.UniformResourceIdentifier)
        assert uris == [f"spiffe://shop/ns/shop/sa/{identity}"]
        assert (out / identity / "ca.crt").read_bytes() == (out / "ca" / "ca.crt").read_bytes()
    first = (out / "ca" / "ca.crt").read_bytes()
    assert run(["certs", "init", "--namespace", "shop", "--out", str(out)]) == 1
    assert "--force" in capsys.readouterr().err
    assert run(["certs", "init", "--namespace", "shop", "--out", str(out), "--force"]) == 0
    assert (out / "ca" / "ca.crt").read_bytes() != first
    assert run(["certs", "init", "--namespace", "Not_A_Label", "--out", str(out)]) == 1


def test_the_suite_gives_each_service_its_own_identity_and_probe_port(tmp_path):
    suite = Suite(tmp_path, base_port=41000, probe_base_port=9100)
    order = suite.environment("order")
    assert order["SHOP_TLS_DIR"] == str(tmp_path.resolve() / "certs" / "order")
    assert order["SHOP_PROBE_ADDRESS"] == "127.0.0.1:9100"
    assert suite.environment("user")["SHOP_PROBE_ADDRESS"] == "127.0.0.1:9103"
    assert suite.environment("user")["SHOP_TLS_DIR"].endswith("/certs/user")
    # Without a probe base port of their own, probe ports follow the services' ports.
    first_probe = 41000 + len(registry.names())
    assert Suite(tmp_path, base_port=41000).probe_endpoints()["order"] == f"127.0.0.1:{first_probe}"
    insecure = Suite(tmp_path, base_port=41000, insecure=True).environment("order")
    assert insecure["SHOP_INSECURE"] == "1"
    assert "SHOP_TLS_DIR" not in insecure


def test_probe_ports_are_8081_on_by_default_and_follow_a_moved_base_port():
    def probe_base(*argv: str) -> int | None:
        return _probe_base_port(build_parser().parse_args(["up", *argv]))

    assert probe_base() == 8081
    assert probe_base("--base-port", "60000") is None  # right after the service ports
    assert probe_base("--base-port", "60000", "--probe-base-port", "7000") == 7000


def test_metrics_ports_are_9101_on_by_default_and_follow_the_probe_ports(tmp_path):
    def metrics_base(*argv: str) -> int | None:
        return _metrics_base_port(build_parser().parse_args(["up", *argv]))

    assert metrics_base() == 9101
    assert metrics_base("--base-port", "60000") is None  # right after the probe ports
    assert metrics_base("--base-port", "60000", "--metrics-base-port", "7000") == 7000
    suite = Suite(tmp_path, base_port=41000, probe_base_port=8081, metrics_base_port=9101)
    assert [suite.environment(s)["SHOP_METRICS_ADDRESS"] for s in registry.names()] == [
        f"127.0.0.1:{9101 + i}" for i in range(len(registry.names()))
    ]
    span = len(registry.names())
    moved = Suite(tmp_path, base_port=41000).metrics_endpoints()["order"]
    assert moved == f"127.0.0.1:{41000 + 2 * span}"


def test_a_service_without_its_certificates_exits_2_saying_what_to_do(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOP_")}
    env.update(SHOP_TLS_DIR=str(tmp_path), SHOP_DATA_DIR=str(tmp_path), SHOP_LOG_FORMAT="json")
    result = subprocess.run(
        [sys.executable, "-m", "shop_user"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"SHOP_TLS_DIR={tmp_path}" in result.stderr
    assert "SHOP_INSECURE=1" in result.stderr


def test_a_command_with_a_data_dir_presents_that_suites_client_certificate(tmp_path):
    # `shop bench --data-dir D` loads the suite `shop up --data-dir D` runs: its pid files
    # and its client identity come from the same place, whatever the environment says.
    assert run(["certs", "init", "--namespace", "shop", "--out", str(tmp_path / "certs")]) == 0
    args = build_parser().parse_args(["bench", "--data-dir", str(tmp_path)])
    elsewhere = {"SHOP_DATA_DIR": str(tmp_path / "other")}
    assert client_tls(args, elsewhere) == TlsSettings(tmp_path / "certs" / "client")
    assert client_tls(args, {**elsewhere, "SHOP_TLS_DIR": str(tmp_path / "certs" / "order")}) == (
        TlsSettings(tmp_path / "certs" / "order")
    )
    without = build_parser().parse_args(["bench"])
    with pytest.raises(CliError, match=str(tmp_path / "other" / "certs" / "client")):
        client_tls(without, elsewhere)


def test_shop_up_says_how_the_other_commands_find_a_data_dir_they_would_not_look_in(tmp_path):
    elsewhere = tmp_path / "suite"
    assert (
        data_dir_hint(elsewhere, {}) == f"for the shop commands: export SHOP_DATA_DIR={elsewhere}"
    )
    assert data_dir_hint(elsewhere, {"SHOP_DATA_DIR": str(elsewhere)}) is None
    assert data_dir_hint(Path(".shop").resolve(), {}) is None
