"""Entry point of the `shop` command."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import grpc

from shop_cli.arguments import CliError
from shop_cli.commands import bench, catalog, certs, demo, login, orders, probe, up, users
from shop_cli.output import describe_rpc_error

COMMAND_GROUPS = (up, users, login, catalog, orders, demo, probe, bench, certs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shop",
        description="Run the shop suite locally, talk to its services, probe them, load them.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.register(subparsers)
    return parser


def run(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        # Report against the subcommand, so its usage and exit status apply.
        args.parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        return int(args.handler(args))
    except grpc.RpcError as exc:
        for line in describe_rpc_error(exc):
            print(line, file=sys.stderr)
        return 1
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`shop orders list | head`): nothing left to say, and nothing
        # to say it to. Standard output is pointed at nothing so its flush at exit is quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":
    main()
