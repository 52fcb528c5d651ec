"""The certificate the `shop` client commands present: the ``client`` identity.

By default the one `shop up` made, ``<data dir>/certs/client`` (data dir: the command's
--data-dir, else $SHOP_DATA_DIR, else .shop); --tls-dir or $SHOP_TLS_DIR name another
directory in the same layout (ca.crt, tls.crt, tls.key); --insecure or SHOP_INSECURE=1 talks
plaintext to a suite started with --insecure.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path

from shop_cli.arguments import CliError
from shop_grpc.certs import CA_FILE, CERT_FILE, KEY_FILE
from shop_grpc.config import PLAINTEXT, TlsSettings
from shop_grpc.registry import CLIENT

CERTS_DIR = "certs"


def add_tls_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tls-dir",
        type=Path,
        metavar="DIR",
        help="client identity: ca.crt, tls.crt, tls.key "
        "(default $SHOP_TLS_DIR, else $SHOP_DATA_DIR/certs/client or .shop/certs/client)",
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="plaintext, no client certificate: for a suite run with `shop up --insecure`",
    )


def data_directory(environ: Mapping[str, str], data_dir: Path | None = None) -> Path:
    """The suite's data directory: `data_dir` (a command's --data-dir), else $SHOP_DATA_DIR,
    else .shop."""
    return data_dir or Path(environ.get("SHOP_DATA_DIR") or ".shop")


def default_directory(environ: Mapping[str, str], data_dir: Path | None = None) -> Path:
    if environ.get("SHOP_TLS_DIR"):
        return Path(environ["SHOP_TLS_DIR"])
    return data_directory(environ, data_dir) / CERTS_DIR / CLIENT


def client_tls(args: argparse.Namespace, environ: Mapping[str, str]) -> TlsSettings:
    """The identity to present, checked to be there; PLAINTEXT if asked for."""
    if getattr(args, "insecure", False) or environ.get("SHOP_INSECURE", "").lower() in {
        "1",
        "true",
        "yes",
    }:
        return PLAINTEXT
    directory = getattr(args, "tls_dir", None) or default_directory(
        environ, getattr(args, "data_dir", None)
    )
    missing = [name for name in (CA_FILE, CERT_FILE, KEY_FILE) if not (directory / name).is_file()]
    if missing:
        raise CliError(
            f"no client certificate in {directory} ({', '.join(missing)} missing): "
            "`shop up` and `shop certs init` make one; or pass --tls-dir DIR, "
            "or --insecure for a suite started with --insecure"
        )
    return TlsSettings(directory)
