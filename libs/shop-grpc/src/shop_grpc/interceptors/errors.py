"""Maps exceptions escaping a handler to a status, in one place for every service."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import structlog

from shop_grpc import status
from shop_grpc.errors import ShopError
from shop_grpc.interceptors._wrap import AroundEachCall, Behavior

log = structlog.get_logger("shop_grpc.errors")


class ErrorMapping(AroundEachCall):
    def advise(self, method: str, behavior: Behavior) -> Behavior:
        async def mapped(request: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                return await behavior(request, context)
            except grpc.aio.AbortError:
                raise
            except ShopError as error:
                rich = status.to_status(error)
                await context.abort(
                    status.code_of(error),
                    rich.message,
                    trailing_metadata=status.trailing_metadata(rich),
                )
            except Exception:
                # A bug, not an answer: log it in full and tell the caller only an id to find it.
                error_id = uuid.uuid4().hex[:12]
                log.exception("unhandled error", error_id=error_id, rpc=method)
                await context.abort(grpc.StatusCode.INTERNAL, f"internal error (id {error_id})")

        return mapped
