"""The API as generated from protos/: every gRPC service of the `shop` package, found by
walking it rather than from the registry, so a proto whose service nobody declared still shows."""

from __future__ import annotations

import importlib
import pkgutil

from google.protobuf.descriptor import ServiceDescriptor

import shop


def generated_services() -> list[ServiceDescriptor]:
    """Every service of every generated ``*_pb2`` module under ``shop``, by full name."""
    modules = [
        importlib.import_module(found.name)
        for found in pkgutil.walk_packages(shop.__path__, "shop.")
        if found.name.endswith("_pb2")
    ]
    services = [
        service for module in modules for service in module.DESCRIPTOR.services_by_name.values()
    ]
    return sorted(services, key=lambda service: str(service.full_name))
