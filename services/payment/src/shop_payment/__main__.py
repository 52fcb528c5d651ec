"""`python -m shop_payment`: runs the payment service until SIGTERM or SIGINT."""

from __future__ import annotations

from shop_grpc.server import main as run_service
from shop_payment import bootstrap, config


def main() -> None:
    run_service("shop-payment", config.load, bootstrap.serve)


if __name__ == "__main__":
    main()
