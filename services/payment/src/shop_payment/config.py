"""The payment service's settings, read once from the environment.

Only the variables every service reads (see shop_grpc.config); the default
port, 50053, comes from there too.
"""

from __future__ import annotations

from dataclasses import dataclass

from shop_grpc.config import Env, ServerSettings, server_settings
from shop_payment.spec import SPEC


@dataclass(frozen=True)
class Settings:
    server: ServerSettings
    """Listen address, database, logging and shutdown grace."""


def load(env: Env) -> Settings:
    return Settings(server=server_settings(SPEC.name, env))
