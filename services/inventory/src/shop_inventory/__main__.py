"""`python -m shop_inventory`: runs the inventory service until SIGTERM or SIGINT."""

from __future__ import annotations

from shop_grpc.server import main as run_service
from shop_inventory import bootstrap, config


def main() -> None:
    run_service("shop-inventory", config.load, bootstrap.serve)


if __name__ == "__main__":
    main()
