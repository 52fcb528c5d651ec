"""Who a call acts for (shop_grpc.principal): a customer only for themselves, anyone else for
everyone, bound per call."""

from __future__ import annotations

import asyncio
import contextvars

from shop_grpc import principal
from shop_grpc.principal import ANYONE, Caller


def test_a_customer_acts_for_themselves_only_and_an_operator_for_anyone():
    alice = Caller("client", user_id="alice")
    operator = Caller("client")

    assert alice.is_customer and alice.may_act_for("alice") and not alice.may_act_for("bob")
    assert not operator.is_customer
    assert operator.may_act_for("alice") and operator.may_act_for("bob")
    assert not ANYONE.is_customer and ANYONE.may_act_for("anyone at all")


def test_a_call_that_bound_no_caller_acts_for_anyone():
    assert contextvars.Context().run(principal.current) is ANYONE


async def test_a_caller_bound_in_one_call_is_not_seen_by_another():
    alice = Caller("order", user_id="alice")

    async def call(caller: Caller | None) -> Caller:
        if caller is not None:
            principal.bind(caller)
        await asyncio.sleep(0)
        return principal.current()

    # Each task runs in a copy of the context, as each gRPC call does.
    bound, unbound = await asyncio.gather(call(alice), call(None))

    assert (bound, unbound) == (alice, ANYONE)
    assert principal.current() is ANYONE
