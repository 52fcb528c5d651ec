"""The services of the suite, as each declares itself.

A service declares one ``ServiceSpec`` in its own package and names it under the entry-point
group ``shop.services`` in its ``pyproject.toml``::

    [project.entry-points."shop.services"]
    order = "shop_order.spec:SPEC"

Everything that needs to know the suite — default ports and targets, certificate identities, who
may call which method, the local suite's start order — reads ``services()`` instead of a list
of its own, so a new service is found where it is installed and nowhere has to be told.

What a process sees is what is installed beside it: all four in a development environment (and
so in `shop up`), one in a service's image. A server needs only its own spec; a dependency that is
not installed has no default address, and its ``SHOP_<NAME>_TARGET`` must be set (the chart
always sets it).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from types import MappingProxyType

from google.protobuf.descriptor import ServiceDescriptor

ENTRY_POINT_GROUP = "shop.services"
NAME = re.compile(r"[a-z][a-z0-9]*")
"""What a service's name may be: its package (``shop_<name>``), its variables
(``SHOP_<NAME>_TARGET``) and its Kubernetes names (no ``_``) all have to allow it."""

CLIENT = "client"
"""The identity of the `shop` CLI an operator runs."""
ANYONE = "*"
"""Any caller holding a certificate from the suite's CA."""
CUSTOMER = "customer"
"""A customer: a call carrying a valid access token (``authorization: Bearer …``), over any
certificate of the suite's CA. It acts for that customer only. The other identities named
for the same method may call it without a token, as operators acting for any customer."""


@dataclass(frozen=True)
class ServiceSpec:
    """One service of the suite: what others need to know to run it, reach it and call it."""

    name: str
    """Lower-case, as in `shop_<name>`, `SHOP_<NAME>_TARGET` and the identity `<name>`."""
    default_port: int
    """Its mTLS gRPC port when nothing says otherwise; `shop up` keeps the services' order."""
    descriptor: ServiceDescriptor
    """Its gRPC service, from the generated code."""
    callers: Mapping[str, tuple[str, ...]]
    """Method name → the identities that may call it (``client``, a service's name,
    ``ANYONE``, or ``CUSTOMER``). A method left out is closed to everyone."""
    depends_on: tuple[str, ...] = ()
    """The services it calls."""
    signs_tokens: bool = False
    """Whether it issues customer access tokens, and so gets the private signing keys
    (shop_grpc.tokens); every other service gets only the public ones."""
    module: str = field(default="")
    """What `python -m` runs; ``shop_<name>`` when empty."""

    def __post_init__(self) -> None:
        # Frozen all the way down: a spec is read by every process-wide table (the policy).
        object.__setattr__(self, "callers", MappingProxyType(dict(self.callers)))

    @property
    def full_name(self) -> str:
        """The proto service name, e.g. ``shop.order.v1.OrderService``."""
        return str(self.descriptor.full_name)

    @property
    def main_module(self) -> str:
        return self.module or f"shop_{self.name}"


@functools.cache
def services() -> Mapping[str, ServiceSpec]:
    """Every installed service's spec by name, in the order of their default ports.

    Raises ValueError if two specs share a name or a port, a spec's entry-point name is not
    its own name, or a name is not lower-case letters and digits (``NAME``).
    """
    found: dict[str, ServiceSpec] = {}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        spec = point.load()
        if not isinstance(spec, ServiceSpec) or spec.name != point.name:
            raise ValueError(f"entry point {point.name} = {point.value} is not its ServiceSpec")
        if not NAME.fullmatch(spec.name):
            raise ValueError(f"service name {spec.name!r} is not lower-case letters and digits")
        if spec.name in found:
            raise ValueError(f"two services are named {spec.name}")
        found[spec.name] = spec
    ports = [spec.default_port for spec in found.values()]
    if len(set(ports)) != len(ports):
        raise ValueError(f"two services share a default port: {sorted(ports)}")
    return dict(sorted(found.items(), key=lambda item: item[1].default_port))


def names() -> tuple[str, ...]:
    return tuple(services())


def spec(name: str) -> ServiceSpec | None:
    return services().get(name)


def start_order() -> tuple[str, ...]:
    """The installed services, each after those it depends on (that are installed).

    Raises ValueError on a dependency cycle.
    """
    ordered: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in ordered or name not in services():
            return
        if name in visiting:
            raise ValueError(f"services depend on each other in a cycle through {name}")
        visiting.add(name)
        for dependency in services()[name].depends_on:
            visit(dependency)
        visiting.discard(name)
        ordered.append(name)

    for name in services():
        visit(name)
    return tuple(ordered)


def identities() -> tuple[str, ...]:
    """Every identity a certificate is made for: each service, and the CLI's."""
    return (*names(), CLIENT)


@functools.cache
def policy() -> Mapping[str, Mapping[str, tuple[str, ...]]]:
    """Proto service name → method → the identities that may call it, for every installed
    service."""
    return {spec.full_name: dict(spec.callers) for spec in services().values()}
