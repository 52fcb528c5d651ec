"""The interceptor chains, in the order they run (outermost first).

Server:
  1. RequestLogging   binds the method to the log context; one line per call
  2. ErrorMapping     ShopError -> status code + google.rpc details; anything else -> INTERNAL

Client: none yet; channels.open_channel installs ``client_interceptors()``.
"""

from __future__ import annotations

import grpc

from shop_grpc.interceptors.errors import ErrorMapping
from shop_grpc.interceptors.logging import RequestLogging


def server_interceptors() -> list[grpc.aio.ServerInterceptor]:
    return [RequestLogging(), ErrorMapping()]


def client_interceptors() -> list[grpc.aio.ClientInterceptor]:
    return []
