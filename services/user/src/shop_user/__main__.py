"""`python -m shop_user`: runs the user service until SIGTERM or SIGINT."""

from __future__ import annotations

from shop_grpc.server import main as run_service
from shop_user import bootstrap, config


def main() -> None:
    run_service("shop-user", config.load, bootstrap.serve)


if __name__ == "__main__":
    main()
