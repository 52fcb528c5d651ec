"""`shop up`: the whole suite in the foreground until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from shop_cli import postgres
from shop_cli.arguments import command, positive_float, positive_int
from shop_cli.replicas import DEFAULT_DNS_PORT, ReplicatedSuite
from shop_cli.scrape import write_scrape_config
from shop_cli.suite import Suite, SuiteError, default_base_port
from shop_cli.tls import data_directory
from shop_grpc import certs, registry

DEFAULT_PROBE_BASE_PORT = 8081
DEFAULT_METRICS_BASE_PORT = 9101


class StopRequested(Exception):
    """Raised in the main thread by the SIGINT/SIGTERM handler."""


def register(subparsers: Any) -> None:
    parser = command(subparsers, "up", run, "run every service of the suite here until Ctrl-C")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(".shop"),
        help="databases, logs and the services' pid files (default .shop)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--base-port",
        type=positive_int,
        help="the first service's port; the others keep the distance their declared ports "
        "have from it (default: the lowest declared port, every service on its own)",
    )
    parser.add_argument(
        "--probe-base-port",
        type=positive_int,
        help="the first service's plaintext health probe port; the others follow as their "
        "service ports do (default 8081, or right after the service ports when --base-port "
        "is given)",
    )
    parser.add_argument(
        "--metrics-base-port",
        type=positive_int,
        help="the first service's /metrics port (plain HTTP, for Prometheus); the others "
        "follow as their service ports do (default 9101, or right after the probe ports when "
        "--base-port is given)",
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="plaintext without certificates, for debugging (default: mTLS with "
        "certificates made under DATA_DIR/certs on first start)",
    )
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="keep each service's data on this PostgreSQL server "
        "(postgresql://USER@HOST[:PORT]), in a database shop_<service> made if missing "
        "(default: SQLite files under DATA_DIR)",
    )
    parser.add_argument(
        "--replicas",
        type=positive_int,
        default=1,
        help="replicas of each service, on 127.0.0.1, 127.0.0.2, ... (ignores --host), "
        "reached round-robin through a DNS server on 127.0.0.1 (default 1)",
    )
    parser.add_argument(
        "--dns-port",
        type=positive_int,
        default=DEFAULT_DNS_PORT,
        help=f"port of that DNS server, with --replicas (default {DEFAULT_DNS_PORT})",
    )
    parser.add_argument(
        "--ready-timeout",
        type=positive_float,
        default=60.0,
        metavar="SECONDS",
        help="how long the services may take to become SERVING (default 60)",
    )


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise StopRequested(signal.Signals(signum).name)


@contextmanager
def _stop_signals() -> Iterator[None]:
    previous = {sig: signal.signal(sig, _raise_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def say(text: str) -> None:
    show(f"shop     | {text}", sys.stderr)


def show(text: str, stream: TextIO | None = None) -> None:
    """`text` and its newline in one write: the services' lines reach the same terminal from
    other threads, and print() writes the two apart when output is unbuffered."""
    out = stream or sys.stdout
    out.write(text + "\n")
    out.flush()


def wait_for_exit(suite: Suite | ReplicatedSuite) -> dict[str, int]:
    while not (exited := suite.exited()):
        time.sleep(0.2)
    return exited


def run(args: argparse.Namespace) -> int:
    try:
        suite = _suite(args)
    except SuiteError as exc:
        say(f"error: {exc}")
        return 1
    code = 0
    try:
        with _stop_signals():
            say(f"starting services; data and logs in {suite.data_dir}")
            if not args.insecure and not certs.complete(suite.certs_dir):
                say(f"making a CA and certificates in {suite.certs_dir}")
            suite.start()
            suite.wait_ready(args.ready_timeout)
            show("ready:")
            probes = suite.probe_endpoints()
            scraped = suite.metrics_endpoints()
            for service, endpoint in suite.endpoints().items():
                show(
                    f"  {service:<10} {endpoint}   probe {probes[service]}"
                    f"   metrics {_urls(scraped[service])}"
                )
            if not args.insecure:
                show(f"  mTLS; the shop commands' identity: {suite.certs_dir / 'client'}")
                if hint := data_dir_hint(suite.data_dir, os.environ):
                    show(f"  {hint}")
            scraping = write_scrape_config(suite.data_dir, scraped)
            show(
                f"  to scrape them: prometheus --config.file={scraping} "
                "--enable-feature=exemplar-storage"
            )
            if isinstance(suite, ReplicatedSuite):
                show("  to reach every replica from the shop commands:")
                for service, endpoint in suite.endpoints().items():
                    show(f"    export SHOP_{service.upper()}_TARGET={endpoint}")
            for service, exit_code in wait_for_exit(suite).items():
                say(
                    f"error: {service} exited unexpectedly with code {exit_code}; "
                    f"see {suite.log_path(service)}"
                )
            code = 1
    except StopRequested as stop:
        say(f"{stop}: stopping (within {suite.stop_timeout():g} s)")
    except SuiteError as exc:
        say(f"error: {exc}")
        code = 1
    return max(code, _stop(suite))


def data_dir_hint(data_dir: Path, environ: Mapping[str, str]) -> str | None:
    """What the other shop commands need to find this suite's client certificate, when they
    would look elsewhere (another --data-dir than $SHOP_DATA_DIR, or .shop, says)."""
    if data_directory(environ).resolve() == data_dir.resolve():
        return None
    return f"for the shop commands: export SHOP_DATA_DIR={data_dir}"


def _suite(args: argparse.Namespace) -> Suite | ReplicatedSuite:
    if not registry.names():
        raise SuiteError("no service is installed beside this shop command")
    if args.base_port is None:
        args.base_port = default_base_port()
    service_env = _database_env(args.postgres)
    if args.replicas > 1:
        return ReplicatedSuite(
            args.data_dir,
            args.replicas,
            base_port=args.base_port,
            dns_port=args.dns_port,
            echo=sys.stdout,
            probe_base_port=_probe_base_port(args),
            metrics_base_port=_metrics_base_port(args),
            insecure=args.insecure,
            service_env=service_env,
        )
    return Suite(
        args.data_dir,
        host=args.host,
        base_port=args.base_port,
        echo=sys.stdout,
        probe_base_port=_probe_base_port(args),
        metrics_base_port=_metrics_base_port(args),
        insecure=args.insecure,
        service_env=service_env,
    )


def _database_env(server_url: str | None) -> dict[str, dict[str, str]]:
    """SHOP_DATABASE_URL per service with --postgres; nothing (SQLite files) without."""
    if not server_url:
        return {}
    urls = postgres.database_urls(server_url, registry.names())
    return {service: {"SHOP_DATABASE_URL": url} for service, url in urls.items()}


def _on_declared_ports(args: argparse.Namespace) -> bool:
    """Whether every service keeps its declared port (no --base-port, or the declared one)."""
    return args.base_port is None or args.base_port == default_base_port()


def _probe_base_port(args: argparse.Namespace) -> int | None:
    if args.probe_base_port is not None:
        return int(args.probe_base_port)
    return DEFAULT_PROBE_BASE_PORT if _on_declared_ports(args) else None


def _urls(endpoints: str) -> str:
    """`/metrics` of each replica's comma-separated host:port."""
    return ", ".join(f"http://{e.strip()}/metrics" for e in endpoints.split(","))


def _metrics_base_port(args: argparse.Namespace) -> int | None:
    if args.metrics_base_port is not None:
        return int(args.metrics_base_port)
    return DEFAULT_METRICS_BASE_PORT if _on_declared_ports(args) else None


def _stop(suite: Suite | ReplicatedSuite) -> int:
    # Ignore further Ctrl-C: stop() is already bounded (SIGKILL after its timeout), and
    # abandoning it would orphan the children, which run in their own process group.
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        codes = suite.stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    unclean = {name: code for name, code in codes.items() if code != 0}
    if unclean:
        listed = ", ".join(f"{name} {code}" for name, code in unclean.items())
        say(f"stopped; exit codes not 0: {listed}")
        return 1
    say("stopped")
    return 0
