"""`python -m shop_order`: runs the order service until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import sys

from shop_grpc.config import ConfigError, Env
from shop_order import bootstrap, config


def main() -> None:
    try:
        settings = config.load(Env())
    except ConfigError as error:
        print(f"shop-order: {error}", file=sys.stderr)
        sys.exit(2)
    asyncio.run(bootstrap.serve(settings))


if __name__ == "__main__":
    main()
