"""`python -m shop_order`: runs the order service until SIGTERM or SIGINT."""

from __future__ import annotations

from shop_grpc.server import main as run_service
from shop_order import bootstrap, config


def main() -> None:
    run_service("shop-order", config.load, bootstrap.serve)


if __name__ == "__main__":
    main()
