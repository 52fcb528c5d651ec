"""Typed settings, read once from the environment at start-up and passed down.

Only this module and each service's own ``config`` module look at the
environment; everything deeper receives frozen dataclasses.

Variables every service reads (``SHOP_`` prefix):
    SHOP_LISTEN_ADDRESS            host:port to serve on (default [::]:<service port>)
    SHOP_DATA_DIR                  where the embedded SQLite files live (default .shop)
    SHOP_DATABASE_URL              SQLAlchemy URL; postgresql://… or sqlite:///…
                                   (default sqlite under SHOP_DATA_DIR)
    SHOP_INSTANCE_ID               this replica's name (default <service>@<host>:<port>)
    SHOP_LOG_FORMAT                json | console (colours only on a terminal) | auto (console
                                   on a terminal, else json)
    SHOP_LOG_LEVEL                 debug | info | warning | error (default info)
    SHOP_SHUTDOWN_DRAIN_SECONDS    after SIGTERM, how long to answer NOT_SERVING before the
                                   stop begins (default 0)
    SHOP_SHUTDOWN_GRACE_SECONDS    then how long calls in flight may finish (default 10)
    SHOP_SHUTDOWN_BACKGROUND_SECONDS  then how long background jobs get to stop and
                                   resources to close (default 5)
    SHOP_SHUTDOWN_FLUSH_SECONDS    then how long buffered spans get to be exported (default 3);
                                   the four make the stop's budget (ShutdownSettings)
    SHOP_<DEPENDENCY>_TARGET       gRPC target of a dependency, e.g. SHOP_INVENTORY_TARGET
    SHOP_TLS_DIR                   this identity's ca.crt, tls.crt and tls.key (a mounted
                                   TLS Secret; default /etc/shop/tls); the server will not
                                   start without them unless SHOP_INSECURE=1
    SHOP_INSECURE                  1: plaintext, no client certificates, no identity checks
                                   (debugging only; logged loudly at start)
    SHOP_TOKEN_KEYS_DIR            customer access token keys, one <kid>.pem each (a mounted
                                   Secret; default /etc/shop/token-keys): public keys verify,
                                   private keys also sign (shop_grpc.tokens). Missing: every
                                   token is refused, calls without one are as before
    SHOP_PROBE_ADDRESS             plaintext grpc.health.v1-only port for probes (default [::]:8081)
    SHOP_METRICS_ADDRESS           plaintext HTTP port serving /metrics for Prometheus (default
                                   [::]:9090); off: no metrics at all (shop_grpc.metrics)
    SHOP_DEFAULT_DEADLINE_SECONDS  budget of a call that arrives without a deadline, and of each
                                   call made outside any inbound call (default 10)
    SHOP_MAX_CONNECTION_AGE_SECONDS        clients are sent GOAWAY after this, so they
                                   re-resolve DNS and find new replicas (default 30)
    SHOP_MAX_CONNECTION_AGE_GRACE_SECONDS  how long calls (streams) on such a connection may
                                   still run (default 300)
    SHOP_FAULTS                    test-only fault injection, see shop_grpc.faults (default off)

Tracing reads only the standard OpenTelemetry variables (shop_grpc.telemetry):
    OTEL_EXPORTER_OTLP_ENDPOINT    OTLP/gRPC receiver, e.g. http://jaeger:4317; unset (and no
                                   OTEL_TRACES_EXPORTER): tracing is off and costs nothing
    OTEL_TRACES_EXPORTER           otlp | console | none
    OTEL_SDK_DISABLED              true: tracing off whatever else is set
    OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER[_ARG], OTEL_BSP_*,
    OTEL_EXPORTER_OTLP_*           read by the OpenTelemetry SDK itself
"""

from __future__ import annotations

import builtins
import contextlib
import os
import socket
from collections.abc import Iterator, Mapping
from dataclasses import astuple, dataclass
from pathlib import Path

from shop_grpc import faults as faults_
from shop_grpc import registry

LOG_FORMATS = ("auto", "json", "console")
LOG_LEVELS = ("debug", "info", "warning", "error")
TRACE_EXPORTERS = ("otlp", "console", "none")


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
class TracingSettings:
    exporter: str = "none"
    """otlp, console, or none: no tracing code installed at all."""


def tracing_settings(env: Env) -> TracingSettings:
    if env.str("OTEL_SDK_DISABLED", "").lower() == "true":
        return TracingSettings()
    endpoint = env.str("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "") or env.str(
        "OTEL_EXPORTER_OTLP_ENDPOINT", ""
    )
    # The SDK's own default is otlp to localhost; ours is off unless asked for.
    default = "otlp" if endpoint else "none"
    return TracingSettings(env.choice("OTEL_TRACES_EXPORTER", default, TRACE_EXPORTERS))


@dataclass(frozen=True)
class TlsSettings:
    directory: Path | None = None
    """Holds ca.crt, tls.crt and tls.key of this identity; None means plaintext."""


PLAINTEXT = TlsSettings()
DEFAULT_TLS_DIR = "/etc/shop/tls"


def tls_settings(env: Env) -> TlsSettings:
    if env.str("SHOP_INSECURE", "").lower() in {"1", "true", "yes"}:
        return PLAINTEXT
    return TlsSettings(Path(env.str("SHOP_TLS_DIR", DEFAULT_TLS_DIR)))


@dataclass(frozen=True)
class TokenSettings:
    keys_directory: Path = Path("/etc/shop/token-keys")
    """The access token keys, ``<kid>.pem`` each (shop_grpc.tokens): the user service's holds
    private keys, which sign; every other service's public keys, which only verify."""


def token_settings(env: Env) -> TokenSettings:
    return TokenSettings(Path(env.str("SHOP_TOKEN_KEYS_DIR", str(TokenSettings.keys_directory))))


@dataclass(frozen=True)
class ShutdownSettings:
    """The budget of a graceful stop: its parts, in seconds, spent in this order after SIGTERM.

    Whoever sends SIGTERM must allow ``total_seconds`` before it kills, plus
    EXIT_MARGIN_SECONDS: the chart's terminationGracePeriodSeconds is the preStop sleep,
    these parts and a margin; ``shop up`` waits as long for each service.
    """

    drain_seconds: float = 0.0
    """Serving on while health says NOT_SERVING, so health-checking clients and load
    balancers move away before new calls are refused."""
    grace_seconds: float = 10.0
    """How long calls in flight may run on once new calls are refused; then they are cancelled."""
    background_seconds: float = 5.0
    """How long background jobs get to stop and resources (databases, channels) to close."""
    flush_seconds: float = 3.0
    """How long the spans still buffered get to be exported; what is left then is dropped.
    An unreachable collector would otherwise hold the process for OTEL_EXPORTER_OTLP_TIMEOUT
    per batch."""

    @property
    def total_seconds(self) -> float:
        return float(sum(astuple(self)))  # every field is one part


EXIT_MARGIN_SECONDS = 2.0
"""Allowed on top of ShutdownSettings.total_seconds for the interpreter's own exit (the
chart's shutdown.marginSeconds plays the same part)."""


def shutdown_settings(env: Env) -> ShutdownSettings:
    default = ShutdownSettings()
    return ShutdownSettings(
        drain_seconds=env.float("SHOP_SHUTDOWN_DRAIN_SECONDS", default.drain_seconds),
        grace_seconds=env.float("SHOP_SHUTDOWN_GRACE_SECONDS", default.grace_seconds),
        background_seconds=env.float(
            "SHOP_SHUTDOWN_BACKGROUND_SECONDS", default.background_seconds
        ),
        flush_seconds=env.float("SHOP_SHUTDOWN_FLUSH_SECONDS", default.flush_seconds),
    )


def stop_timeout(environment: Mapping[str, str]) -> float:
    """Seconds to wait, after SIGTERM, for a service started with `environment` to exit."""
    return shutdown_settings(Env(environment)).total_seconds + EXIT_MARGIN_SECONDS


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
    shutdown: ShutdownSettings = ShutdownSettings()
    """The budget of a graceful stop (drain, grace, background work, span flush)."""
    log: LogSettings = LogSettings()
    tls: TlsSettings = PLAINTEXT
    """mTLS identity of this server and of the channels it opens."""
    probe_address: str = ""
    """host:port of the plaintext health-only probe server; empty: none."""
    metrics_address: str = ""
    """host:port of the plaintext HTTP server of /metrics; empty: metrics off (no endpoint,
    no gRPC metrics recorded)."""
    default_deadline_seconds: float = 10.0
    """Budget of a call that arrives without a deadline, spent by the calls it makes."""
    max_connection_age_seconds: float = 30.0
    """Connections older than this get GOAWAY, so clients re-resolve and spread again."""
    max_connection_age_grace_seconds: float = 300.0
    """How long calls already running on such a connection may go on (long streams)."""
    faults: tuple[faults_.Fault, ...] = ()
    """Test-only injected faults; empty in any real deployment."""
    tracing: TracingSettings = TracingSettings()
    """Whether and where spans are exported (shop_grpc.telemetry)."""
    tokens: TokenSettings = TokenSettings()
    """Where the customer access token keys are."""


MAX_INSTANCE_ID = 200
"""Characters of SHOP_INSTANCE_ID: it is stored as a saga lease's owner."""


def server_settings(service: str, env: Env) -> ServerSettings:
    listen = env.str("SHOP_LISTEN_ADDRESS", f"[::]:{default_port(service)}")
    # Two replicas on one host differ by their port: the default id must tell them apart, or
    # each takes the other's saga leases for its own earlier boot's.
    port = listen.rsplit(":", 1)[-1]
    data_dir = Path(env.str("SHOP_DATA_DIR", ".shop"))
    return ServerSettings(
        service=service,
        listen_address=listen,
        database_url=env.str("SHOP_DATABASE_URL", f"sqlite:///{data_dir / f'{service}.db'}"),
        instance_id=_instance_id(env, f"{service}@{socket.gethostname()}:{port}"),
        shutdown=shutdown_settings(env),
        log=LogSettings(
            format=env.choice("SHOP_LOG_FORMAT", "auto", LOG_FORMATS),
            level=env.choice("SHOP_LOG_LEVEL", "info", LOG_LEVELS),
        ),
        default_deadline_seconds=env.float("SHOP_DEFAULT_DEADLINE_SECONDS", 10.0, minimum=0.01),
        max_connection_age_seconds=env.float("SHOP_MAX_CONNECTION_AGE_SECONDS", 30.0, minimum=1),
        max_connection_age_grace_seconds=env.float("SHOP_MAX_CONNECTION_AGE_GRACE_SECONDS", 300.0),
        faults=_faults(env),
        tracing=tracing_settings(env),
        tls=tls_settings(env),
        tokens=token_settings(env),
        probe_address=env.str("SHOP_PROBE_ADDRESS", "[::]:8081"),
        metrics_address=_metrics_address(env),
    )


def _metrics_address(env: Env) -> str:
    value = env.str("SHOP_METRICS_ADDRESS", "[::]:9090")
    if value.lower() == "off":
        return ""
    split_address(value, "SHOP_METRICS_ADDRESS")
    return value


@contextlib.contextmanager
def bound(variable: str, address: str) -> Iterator[None]:
    """Turns gRPC's failure to bind `address` (a RuntimeError, the reason only in gRPC's own
    log line on stderr) into a ConfigError naming `variable`, so the service exits 2 saying
    which setting to change."""
    try:
        yield
    except RuntimeError as error:
        if not str(error).startswith("Failed to bind"):
            raise
        raise ConfigError(
            f"{variable} {address}: cannot be bound (in use, or not an address of this host)"
        ) from None


def split_address(address: str, variable: str) -> tuple[str, int]:
    """``host:port`` or ``[v6 address]:port`` -> (host, port); an empty host is every address.
    Raises ConfigError naming `variable` when it is neither."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"{variable}: {address!r} is not host:port")
    return host.removeprefix("[").removesuffix("]"), int(port)


def _instance_id(env: Env, default: str) -> str:
    value = env.str("SHOP_INSTANCE_ID", default)
    if len(value) > MAX_INSTANCE_ID or not value.isprintable():
        raise ConfigError(
            f"SHOP_INSTANCE_ID: must be at most {MAX_INSTANCE_ID} printable characters"
        )
    return value


def _faults(env: Env) -> tuple[faults_.Fault, ...]:
    spec = env.str("SHOP_FAULTS", "")
    try:
        return faults_.parse(spec)
    except ValueError as error:
        raise ConfigError(f"SHOP_FAULTS: {error}") from None


def default_port(service: str) -> int:
    """The port `service` declares (shop_grpc.registry). Raises ConfigError if it is not
    installed here."""
    spec = registry.spec(service)
    if spec is None:
        raise ConfigError(f"the {service} service is not installed here")
    return spec.default_port


def dependency_target(env: Env, dependency: str) -> str:
    """gRPC target of another service, from SHOP_<NAME>_TARGET; where that is not set, the
    service's default port on this machine, when it is installed here.

    Raises ConfigError when neither says where the service is.
    """
    variable = f"SHOP_{dependency.upper()}_TARGET"
    target = env.str(variable, "")
    if target:
        return target
    if registry.spec(dependency) is None:
        raise ConfigError(f"{variable} is required: the {dependency} service is not installed here")
    return f"127.0.0.1:{default_port(dependency)}"
