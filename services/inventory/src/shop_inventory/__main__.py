"""``python -m shop_inventory``: read the configuration, then serve until SIGTERM."""

from __future__ import annotations

import asyncio
import sys

from shop_grpc.config import ConfigError, Env
from shop_inventory import bootstrap, config


def main() -> None:
    try:
        settings = config.load(Env())
    except ConfigError as error:
        print(f"shop-inventory: {error}", file=sys.stderr)
        sys.exit(2)
    asyncio.run(bootstrap.serve(settings))


if __name__ == "__main__":
    main()
