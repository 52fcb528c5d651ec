"""The inventory service's settings, read once from the environment.

Besides the variables every service reads (see ``shop_grpc.config``):
    SHOP_RESERVATION_TTL_SECONDS     how long a reservation holds stock (default 600)
    SHOP_RESERVATION_SWEEP_SECONDS   how often overdue reservations are expired (default 5)
"""

from __future__ import annotations

from dataclasses import dataclass

from shop_grpc.config import Env, ServerSettings, server_settings
from shop_inventory.spec import SPEC


@dataclass(frozen=True)
class Settings:
    server: ServerSettings
    """Address, database and logging shared by every service."""
    reservation_ttl_seconds: float = 600.0
    """How long a pending reservation holds its stock before it expires."""
    sweep_seconds: float = 5.0
    """Pause between two passes of the job that expires overdue reservations."""


def load(env: Env) -> Settings:
    return Settings(
        server=server_settings(SPEC.name, env),
        reservation_ttl_seconds=env.float("SHOP_RESERVATION_TTL_SECONDS", 600.0, minimum=1.0),
        sweep_seconds=env.float("SHOP_RESERVATION_SWEEP_SECONDS", 5.0, minimum=0.1),
    )
