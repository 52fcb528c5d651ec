"""`shop certs init`: a CA and a certificate per identity, laid out as TLS Secrets."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from shop_cli.arguments import CliError, command, positive_int
from shop_grpc import certs, registry

# A Kubernetes namespace: a DNS label.
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def register(subparsers: Any) -> None:
    group = subparsers.add_parser("certs", help="make the suite's mTLS certificates")
    actions = group.add_subparsers(dest="certs_command", required=True, metavar="ACTION")
    parser = command(
        actions,
        "init",
        run_init,
        "write a new CA and a certificate for each service and for the shop client",
    )
    parser.add_argument(
        "--namespace",
        required=True,
        help="Kubernetes namespace the services run in: it goes into every identity "
        "(spiffe://shop/ns/NS/sa/NAME) and the DNS names",
    )
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="where to write")
    parser.add_argument(
        "--days",
        type=positive_int,
        default=certs.DEFAULT_DAYS,
        help=f"validity of the identities' certificates (default {certs.DEFAULT_DAYS})",
    )
    parser.add_argument(
        "--force", action="store_true", help="replace certificates already in DIR (a new CA)"
    )


def run_init(args: argparse.Namespace) -> int:
    if not _NAMESPACE.match(args.namespace):
        raise CliError(f"--namespace {args.namespace!r}: must be a DNS label (a-z, 0-9, -)")
    out: Path = args.out
    if (out / certs.CA_DIR / certs.CA_FILE).exists() and not args.force:
        raise CliError(f"{out} already holds a CA; pass --force to replace everything in it")
    identities = registry.identities()
    certs.init(out, args.namespace, identities=identities, days=args.days)
    print(f"wrote a CA and certificates for {', '.join(identities)} to {out}")
    for identity in identities:
        print(f"  {out / identity}/  {certs.spiffe_id(args.namespace, identity)}")
    print(
        f"keep {out / certs.CA_DIR / 'ca.key'} private; each identity's directory is one "
        "Secret: kubectl create secret generic NAME --type=kubernetes.io/tls --from-file=DIR",
        file=sys.stderr,
    )
    return 0
