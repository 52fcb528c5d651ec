"""``python -m shop_payment``: serve until SIGTERM."""

from __future__ import annotations

import asyncio
import sys

from shop_grpc.config import ConfigError, Env
from shop_payment import bootstrap, config


def main() -> None:
    try:
        settings = config.load(Env())
    except ConfigError as error:
        print(f"shop-payment: {error}", file=sys.stderr)
        sys.exit(2)
    asyncio.run(bootstrap.serve(settings))


if __name__ == "__main__":
    main()
