"""Exceptions escaping a handler mapped to a status (shop_grpc.interceptors.errors)."""

from __future__ import annotations

import grpc


async def test_a_bug_is_internal_with_an_error_id_and_no_internals(call):
    rpc_error = await call(KeyError("secret-column"))
    assert rpc_error.code() == grpc.StatusCode.INTERNAL
    assert "secret-column" not in rpc_error.details()
    assert rpc_error.details().startswith("internal error (id ")
