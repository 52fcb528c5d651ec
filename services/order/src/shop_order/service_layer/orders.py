"""The order use cases: plain async functions over a unit of work and the saga runner.

Each takes the ``Caller`` the call acts for (shop_grpc.principal): a customer sees and changes
only their own orders. Another customer's order is NOT_FOUND, exactly as one that does not
exist, so its id cannot be probed (OWASP API Security Top 10, API1: broken object level
authorization); naming another user to place or list orders for is PERMISSION_DENIED, as
there is nothing to hide about one's own user id. Operators and services act for anyone.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from shop_grpc import pagination
from shop_grpc.changes import ChangeSignal
from shop_grpc.errors import Unavailable
from shop_grpc.idempotency import check_replay
from shop_grpc.pagination import Page, PageTokens
from shop_grpc.principal import ANYONE, Caller
from shop_grpc.storage import DuplicateKey, utcnow
from shop_order.domain import saga
from shop_order.domain.errors import OrderAlreadyFailed, OrderNotFound, OtherCustomer
from shop_order.domain.model import Order, OrderLine, Status
from shop_order.service_layer.ports import Card, Payments
from shop_order.service_layer.saga_runner import SagaRunner
from shop_order.service_layer.unit_of_work import UnitOfWorkFactory


@dataclass(frozen=True)
class WaitSettings:
    default_wait_seconds: float = 30.0
    """How long CreateOrder and CancelOrder wait for a final state without a caller deadline."""


async def place_order(
    uow: UnitOfWorkFactory,
    payments: Payments,
    runner: SagaRunner,
    *,
    user_id: str,
    lines: list[OrderLine],
    card: Card,
    request_id: str,
    fingerprint: str,
    caller: Caller,
) -> Order:
    """Records the order and starts its saga.

    A repeated request_id with the same request (same `fingerprint`) returns the first order;
    with a different one it raises RequestIdReused (ALREADY_EXISTS) and changes nothing.
    Raises OtherCustomer when a customer orders for another user.
    """
    _own(caller, user_id)
    request_id = request_id or str(uuid.uuid4())
    existing = await _replayed(uow, request_id, fingerprint)
    if existing is not None:
        return existing
    # The card is exchanged for a payment method before anything is stored, so the
    # order never holds card details and a bad card leaves nothing behind.
    payment_method_id = await payments.create_payment_method(card, request_id)
    order = Order(
        order_id=str(uuid.uuid4()),
        user_id=user_id,
        lines=lines,
        payment_method_id=payment_method_id,
        request_id=request_id,
        request_fingerprint=fingerprint,
    )
    # Stored already at its first step: the user check is recorded before it runs.
    saga.begin(order)
    try:
        async with uow() as tx:
            await tx.orders.add(order, runner.lease, utcnow())
            await tx.commit()
    except DuplicateKey:
        # The same request_id raced us here and won.
        existing = await _replayed(uow, request_id, fingerprint)
        assert existing is not None
        return existing
    runner.start(order.order_id, claimed=True, placed=order)
    return order


async def _replayed(uow: UnitOfWorkFactory, request_id: str, fingerprint: str) -> Order | None:
    """The order first placed with `request_id`, if any and if it was this same request."""
    existing = await _by_request_id(uow, request_id)
    if existing is not None:
        check_replay(request_id, existing.request_fingerprint, fingerprint)
    return existing


async def _by_request_id(uow: UnitOfWorkFactory, request_id: str) -> Order | None:
    async with uow(readonly=True) as tx:
        return await tx.orders.get_by_request_id(request_id)


def _own(caller: Caller, user_id: str) -> None:
    if not caller.may_act_for(user_id):
        raise OtherCustomer()


def _visible(caller: Caller, order: Order | None, order_id: str) -> Order:
    """`order` if it exists and `caller` may see it; OrderNotFound for both otherwise."""
    if order is None or not caller.may_act_for(order.user_id):
        raise OrderNotFound(order_id)
    return order


async def get_order(uow: UnitOfWorkFactory, order_id: str, caller: Caller) -> Order:
    async with uow(readonly=True) as tx:
        order = await tx.orders.get(order_id)
    return _visible(caller, order, order_id)


async def list_orders(
    uow: UnitOfWorkFactory,
    tokens: PageTokens,
    user_id: str,
    page_size: int,
    page_token: str,
    caller: Caller,
) -> Page[Order]:
    """One page of the user's orders, newest first. Raises OtherCustomer when a customer
    asks for another user's."""
    _own(caller, user_id)
    scope = f"orders/{user_id}"
    after = tokens.read_time_and_id(scope, page_token)

    async def fetch(limit: int) -> list[Order]:
        async with uow(readonly=True) as tx:
            return await tx.orders.list_for_user(user_id, after, limit)

    def resume_after(order: Order) -> str:
        assert order.create_time is not None
        return tokens.issue(scope, [order.create_time, order.order_id])

    return await pagination.page_of(fetch, page_size, resume_after)


async def cancel_order(
    uow: UnitOfWorkFactory, runner: SagaRunner, order_id: str, caller: Caller
) -> Order:
    """Undoes a confirmed order; stops and undoes one in flight."""
    async with uow() as tx:
        order = _visible(caller, await tx.orders.get(order_id, for_update=True), order_id)
        if order.status is Status.CANCELLED or order.undo_outcome is Status.CANCELLED:
            return order
        if order.status is Status.FAILED or order.undo_outcome is Status.FAILED:
            raise OrderAlreadyFailed(order_id)
        was_final = order.is_final
        saga.request_cancel(order)
        if was_final:
            # Nobody drives a finished order: this call takes the lease and starts the undo.
            await tx.orders.reopen(order, runner.lease, utcnow())
        else:
            await tx.orders.save_unleased(order, utcnow())
        await tx.commit()
    runner.signal.notify(order_id)
    runner.start(order_id, claimed=was_final)
    return order


async def wait_until_final(
    uow: UnitOfWorkFactory, runner: SagaRunner, order_id: str, wait_seconds: float
) -> Order:
    """The order once final, or as it stands when `wait_seconds` run out.

    While this replica drives the order, the drive hands over the final state it committed
    (`SagaRunner.drive_of`); otherwise each change is read from the database.
    """
    signal = runner.signal
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    while True:
        drive = runner.drive_of(order_id)
        if drive is not None:
            await asyncio.wait({drive}, timeout=max(deadline - loop.time(), 0.0))
            if drive.done() and not drive.cancelled() and drive.exception() is None:
                final = drive.result()
                if final is not None:
                    return final
        seen = signal.version(order_id)
        # The call that placed or cancelled the order has checked the caller may see it.
        order = await get_order(uow, order_id, ANYONE)
        if order.is_final or loop.time() >= deadline or signal.closed:
            return order
        with contextlib.suppress(TimeoutError, Unavailable):
            await asyncio.wait_for(signal.wait(seen, order_id), deadline - loop.time())


async def watch_order(
    uow: UnitOfWorkFactory, signal: ChangeSignal, order_id: str, caller: Caller
) -> AsyncIterator[Order]:
    """The order now, then after every change, ending with its final state."""
    last: tuple[object, ...] | None = None
    while True:
        seen = signal.version(order_id)
        order = await get_order(uow, order_id, caller)
        state = (order.status, order.step, order.payment_id, order.update_time)
        if state != last:
            last = state
            yield order
        if order.is_final:
            return
        await signal.wait(seen, order_id)
