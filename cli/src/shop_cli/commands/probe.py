"""`shop probe`: grpc_health_probe's command line, for scripts, pods and people.

    shop probe -addr=127.0.0.1:8081 -service shop.order.v1.OrderService
    shop probe -addr 127.0.0.1:50051 -tls -tls-ca-cert ca.crt -tls-client-cert tls.crt \\
        -tls-client-key tls.key -tls-server-name order
    shop probe 127.0.0.1:8081          # short for -addr=127.0.0.1:8081

Flags, their defaults, messages and exit codes are grpc_health_probe's (0 SERVING,
1 bad arguments, 2 connection failure, 3 RPC failure, 4 not SERVING), in Go's flag
syntax (shop_cli.goflags). The status line goes to stdout, everything else (-h's list
of flags too, which exits 1 as grpc_health_probe's does) to stderr. -alts and -spiffe
are refused (exit 1): ALTS works only on Google's cloud, and the suite's SPIFFE
identities are files, which -tls-client-cert/-key present.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from shop_cli.arguments import command
from shop_cli.goflags import Duration, Flag, FlagError, HelpRequested, Kind, parse, usage
from shop_cli.health_probe import (
    ONE_SECOND,
    Metadata,
    ProbeExit,
    ProbeOptions,
    ProbeTls,
    probe,
)

PROGRAM = "shop probe"
FLAGS = (
    Flag("addr", Kind.STRING, "(required) host:port of the server to check"),
    Flag("service", Kind.STRING, 'name of the service to check (default: "", the server)'),
    Flag("user-agent", Kind.STRING, "user-agent of the check", "grpc_health_probe"),
    Flag("connect-timeout", Kind.DURATION, "how long connecting may take", ONE_SECOND),
    Flag("rpc-timeout", Kind.DURATION, "how long the check may take", ONE_SECOND),
    Flag("tls", Kind.BOOL, "use TLS (default: false, plaintext)"),
    Flag("tls-no-verify", Kind.BOOL, "(with -tls) trust whatever certificate the server shows"),
    Flag(
        "tls-ca-cert", Kind.STRING, "(with -tls) CA certificates to trust instead of the system's"
    ),
    Flag(
        "tls-client-cert", Kind.STRING, "(with -tls) certificate to present (needs -tls-client-key)"
    ),
    Flag("tls-client-key", Kind.STRING, "(with -tls) its private key (needs -tls-client-cert)"),
    Flag("tls-server-name", Kind.STRING, "(with -tls) name to check the server's certificate for"),
    Flag("rpc-header", Kind.STRINGS, "'name: value' metadata sent with the check; repeatable"),
    Flag("gzip", Kind.BOOL, "compress the check with gzip"),
    Flag("v", Kind.BOOL, "verbose logs"),
    Flag("alts", Kind.BOOL, "not supported"),
    Flag("spiffe", Kind.BOOL, "not supported: pass the SPIFFE certificate's files with -tls"),
)
# grpc_health_probe's checks of flags given together, in its order (the first failing one
# is reported): each pair of the first kind needs its second flag, each of the second kind
# cannot go with -tls-no-verify.
_NEEDS = (
    ("tls-no-verify", "tls"),
    ("tls-ca-cert", "tls"),
    ("tls-client-cert", "tls"),
    ("tls-server-name", "tls"),
    ("tls-client-cert", "tls-client-key"),
    ("tls-client-key", "tls-client-cert"),
)
_UNUSED_WITHOUT_VERIFYING = (("tls-ca-cert", "CA cert"), ("tls-server-name", "server name"))
# What gRPC accepts as metadata: names of these characters, and printable ASCII for the
# value unless the name ends in -bin. gRPC checks only as the call is made, and logs a
# line of its own; the probe checks while reading its flags, so a bad header is exit 1.
_HEADER_NAME = re.compile(r"[0-9a-z_.\-]+")
_TEXT_VALUE = re.compile(r"[\x20-\x7e]*")


class ArgumentError(ValueError):
    """A bad command line; the message is grpc_health_probe's."""


def register(subparsers: Any) -> None:
    # The arguments are grpc_health_probe's, in Go's syntax: argparse passes them on
    # untouched ("+" is no flag prefix here) and goflags reads them.
    parser = command(
        subparsers,
        "probe",
        run,
        "check a server's gRPC health, exactly as grpc_health_probe does",
        prefix_chars="+",
        add_help=False,
        usage="shop probe [-addr=]HOST:PORT [grpc_health_probe flags] (-h lists them)",
    )
    parser.add_argument("arguments", nargs="*", help="grpc_health_probe's flags")


def options(arguments: Sequence[str]) -> tuple[ProbeOptions, bool]:
    """The probe to run and whether -v was given; raises ArgumentError, FlagError, HelpRequested."""
    parsed = parse(FLAGS, arguments)
    values = dict(parsed.values)
    values["addr"] = _address(str(values["addr"]), parsed.positionals, "addr" in parsed.given)
    _validate(values)
    tls = None
    if values["tls"]:
        tls = ProbeTls(
            _path(values["tls-ca-cert"]),
            _path(values["tls-client-cert"]),
            _path(values["tls-client-key"]),
            str(values["tls-server-name"]),
            bool(values["tls-no-verify"]),
        )
    probe_options = ProbeOptions(
        addr=str(values["addr"]),
        service=str(values["service"]),
        user_agent=str(values["user-agent"]),
        connect_timeout=_duration(values["connect-timeout"]),
        rpc_timeout=_duration(values["rpc-timeout"]),
        tls=tls,
        rpc_headers=rpc_headers(values["rpc-header"]),
        gzip=bool(values["gzip"]),
    )
    return probe_options, bool(values["v"])


def _address(flag: str, positionals: Sequence[str], flag_given: bool) -> str:
    if len(positionals) > 1:
        raise ArgumentError(f"one address only, got {' '.join(positionals)}")
    if positionals and flag_given and positionals[0] != flag:
        raise ArgumentError(f"two addresses: -addr={flag} and {positionals[0]}")
    return positionals[0] if positionals else flag


def _validate(values: Mapping[str, object]) -> None:
    if not values["addr"]:
        raise ArgumentError("-addr not specified")
    for name in ("connect-timeout", "rpc-timeout"):
        timeout = _duration(values[name])
        if timeout.nanoseconds <= 0:
            raise ArgumentError(f"-{name} must be greater than zero (specified: {timeout})")
    for name in ("alts", "spiffe"):
        if values[name]:
            raise ArgumentError(f"-{name} is not supported by {PROGRAM}")
    for given, needed in _NEEDS:
        if values[given] and not values[needed]:
            raise ArgumentError(f"specified -{given} without specifying -{needed}")
    for name, what in _UNUSED_WITHOUT_VERIFYING:
        if values["tls-no-verify"] and values[name]:
            raise ArgumentError(
                f"cannot specify -{name} with -tls-no-verify ({what} would not be used)"
            )


def rpc_headers(values: object) -> Metadata:
    """``name: value`` pairs as gRPC metadata: names lowercased, ``-bin`` values as bytes."""
    assert isinstance(values, tuple)
    headers: list[tuple[str, str | bytes]] = []
    for text in values:
        name, colon, value = text.partition(":")
        key, value = name.strip().lower(), value.lstrip()
        if not colon:
            problem = f"expected 'key: value', got \"{text}\""
        elif not key:
            problem = "the name is empty"
        elif not _HEADER_NAME.fullmatch(key):
            problem = f'name "{key}" has characters not in [0-9a-z-_.]'
        elif not key.endswith("-bin") and not _TEXT_VALUE.fullmatch(value):
            problem = (
                f'the value of "{key}" has characters other than printable ASCII '
                "(a name ending in -bin takes any bytes)"
            )
        else:
            # fsencode: the bytes as given, even those that are not UTF-8.
            headers.append((key, os.fsencode(value) if key.endswith("-bin") else value))
            continue
        raise FlagError(
            f'invalid value "{text}" for flag -rpc-header: invalid RPC header, {problem}'
        )
    return tuple(headers)


def _duration(value: object) -> Duration:
    assert isinstance(value, Duration)
    return value


def _path(value: object) -> Path | None:
    return Path(str(value)) if value else None


def _verbose_lines(probe_options: ProbeOptions) -> list[str]:
    o = probe_options
    lines = [
        "parsed options:",
        f"> addr={o.addr} conn_timeout={o.connect_timeout} rpc_timeout={o.rpc_timeout}",
        f"> tls={str(o.tls is not None).lower()}",
    ]
    if o.tls is not None:
        lines += [
            f"  > no-verify={str(o.tls.no_verify).lower()} ",
            f"  > ca-cert={o.tls.ca_cert or ''}",
            f"  > client-cert={o.tls.client_cert or ''}",
            f"  > client-key={o.tls.client_key or ''}",
            f"  > server-name={o.tls.server_name}",
        ]
    return lines


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def main(arguments: Sequence[str]) -> int:
    """The probe's exit code for `arguments` (everything after ``shop probe``)."""
    try:
        probe_options, verbose = options(arguments)
    except HelpRequested:
        # Go's flag package prints the usage to stderr and returns flag.ErrHelp, on which
        # grpc_health_probe exits 1 as on any other error of its flags.
        _stderr(usage(PROGRAM, FLAGS))
        return int(ProbeExit.INVALID_ARGUMENTS)
    except FlagError as error:
        _stderr(str(error))
        _stderr(usage(PROGRAM, FLAGS))
        return int(ProbeExit.INVALID_ARGUMENTS)
    except ArgumentError as error:
        _stderr(f"error: {error}")
        return int(ProbeExit.INVALID_ARGUMENTS)
    if verbose:
        for line in _verbose_lines(probe_options):
            _stderr(line)
    result = asyncio.run(probe(probe_options, _stderr if verbose else None))
    print(result.message, file=sys.stdout if result.exit == ProbeExit.SERVING else sys.stderr)
    return int(result.exit)


def run(args: argparse.Namespace) -> int:
    return main(args.arguments)
