"""The user service's settings, read once from the environment (see shop_grpc.config)."""

from __future__ import annotations

from dataclasses import dataclass

from shop_grpc.config import Env, ServerSettings, server_settings
from shop_user.spec import SPEC


@dataclass(frozen=True)
class Settings:
    server: ServerSettings
    """Listen address, database, logging and shutdown grace; port 50054 by default."""


def load(env: Env) -> Settings:
    return Settings(server=server_settings(SPEC.name, env))
