"""``python -m shop_user``: serve until SIGTERM; exit 2 on a bad configuration."""

from __future__ import annotations

import asyncio
import sys

from shop_grpc.config import ConfigError, Env
from shop_user import bootstrap, config


def main() -> None:
    try:
        settings = config.load(Env())
    except ConfigError as error:
        print(f"shop-user: {error}", file=sys.stderr)
        sys.exit(2)
    asyncio.run(bootstrap.serve(settings))


if __name__ == "__main__":
    main()
