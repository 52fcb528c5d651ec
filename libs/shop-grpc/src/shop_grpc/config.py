"""Typed settings, read once from the environment at start-up and passed down.

Only this module and each service's own ``config`` module look at the
environment; everything deeper receives frozen dataclasses.

Variables every service reads (``SHOP_`` prefix):
    SHOP_LISTEN_ADDRESS            host:port to serve on (default [::]:<service port>)
    SHOP_DATA_DIR                  where the embedded SQLite files live (default .shop)
    SHOP_DATABASE_URL              SQLAlchemy URL; postgresql://… or sqlite:///…
                                   (default sqlite under SHOP_DATA_DIR)
    SHOP_INSTANCE_ID               this replica's name (default <service>@<host>:<port>)
    SHOP_LOG_FORMAT                json | console | auto (console on a terminal)
    SHOP_LOG_LEVEL                 debug | info | warning | error (default info)
    SHOP_SHUTDOWN_GRACE_SECONDS    how long in-flight calls may finish on SIGTERM (default 10)
    SHOP_SHUTDOWN_DRAIN_SECONDS    how long to answer NOT_SERVING before stopping (default 0)
    SHOP_<DEPENDENCY>_TARGET       gRPC target of a dependency, e.g. SHOP_INVENTORY_TARGET
"""

from __future__ import annotations

import builtins
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

SERVICES = ("order", "inventory", "payment", "user")
DEFAULT_PORTS = {"order": 50051, "inventory": 50052, "payment": 50053, "user": 50054}
LOG_FORMATS = ("auto", "json", "console")
LOG_LEVELS = ("debug", "info", "warning", "error")


class ConfigError(ValueError):
    """A variable holds a value the service cannot use; names the variable."""


class Env:
    """Typed reads of environment variables, each failing with the variable's name."""

    # Methods are named after the types they return, so annotations spell out builtins.

    def __init__(self, values: Mapping[builtins.str, builtins.str] | None = None) -> None:
        self._values = dict(os.environ if values is None else values)

    def str(self, name: builtins.str, default: builtins.str) -> builtins.str:
        return self._values.get(name, "") or default

    def choice(
        self, name: builtins.str, default: builtins.str, choices: tuple[builtins.str, ...]
    ) -> builtins.str:
        value = self.str(name, default).lower()
        if value not in choices:
            raise ConfigError(f"{name}={value!r}: must be one of {', '.join(choices)}")
        return value

    def float(
        self, name: builtins.str, default: builtins.float, *, minimum: builtins.float = 0.0
    ) -> builtins.float:
        raw = self.str(name, "")
        try:
            value = float(raw) if raw else default
        except ValueError:
            raise ConfigError(f"{name}={raw!r}: must be a number") from None
        if value < minimum:
            raise ConfigError(f"{name}={raw!r}: must be at least {minimum}")
        return value

    def int(
        self, name: builtins.str, default: builtins.int, *, minimum: builtins.int = 0
    ) -> builtins.int:
        raw = self.str(name, "")
        try:
            value = int(raw) if raw else default
        except ValueError:
            raise ConfigError(f"{name}={raw!r}: must be a whole number") from None
        if value < minimum:
            raise ConfigError(f"{name}={raw!r}: must be at least {minimum}")
        return value


@dataclass(frozen=True)
class LogSettings:
    format: str = "auto"
    """json, console, or auto: console when stdout is a terminal."""
    level: str = "info"
    """Lowest level written."""


@dataclass(frozen=True)
class ServerSettings:
    service: str
    """Short service name: order, inventory, payment or user."""
    listen_address: str
    """host:port the gRPC server binds; port 0 picks a free one."""
    database_url: str
    """SQLAlchemy URL of the service's own database."""
    instance_id: str
    """Name of this replica, used for saga leases and logs."""
    shutdown_grace_seconds: float = 10.0
    """How long in-flight calls may run after SIGTERM before they are cancelled."""
    drain_seconds: float = 0.0
    """How long to keep serving while reporting NOT_SERVING before the stop begins, so
    health-checking clients and load balancers move away first."""
    log: LogSettings = LogSettings()


def server_settings(service: str, env: Env) -> ServerSettings:
    port = DEFAULT_PORTS[service]
    listen = env.str("SHOP_LISTEN_ADDRESS", f"[::]:{port}")
    data_dir = Path(env.str("SHOP_DATA_DIR", ".shop"))
    return ServerSettings(
        service=service,
        listen_address=listen,
        database_url=env.str("SHOP_DATABASE_URL", f"sqlite:///{data_dir / f'{service}.db'}"),
        instance_id=env.str("SHOP_INSTANCE_ID", f"{service}@{socket.gethostname()}:{port}"),
        shutdown_grace_seconds=env.float("SHOP_SHUTDOWN_GRACE_SECONDS", 10.0),
        drain_seconds=env.float("SHOP_SHUTDOWN_DRAIN_SECONDS", 0.0),
        log=LogSettings(
            format=env.choice("SHOP_LOG_FORMAT", "auto", LOG_FORMATS),
            level=env.choice("SHOP_LOG_LEVEL", "info", LOG_LEVELS),
        ),
    )


def dependency_target(env: Env, dependency: str) -> str:
    """gRPC target of another service, from SHOP_<NAME>_TARGET."""
    return env.str(f"SHOP_{dependency.upper()}_TARGET", f"127.0.0.1:{DEFAULT_PORTS[dependency]}")
