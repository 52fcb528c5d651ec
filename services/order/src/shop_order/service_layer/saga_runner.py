"""Drives orders through their saga, durably, on any number of replicas.

Each step's state is committed before the step's call goes out, and every
call is idempotent on the other side (keyed by order id), so after a crash
the step is simply run again. A replica drives an order only while it holds
the order's lease, which it renews while a call waits and checks before a
retry; the recovery loop picks up orders that are due: free, whose lease
lapsed (their replica died), or that an earlier boot of this replica left
behind, the ones due longest first. A failing step backs off per order, so
it never holds back an order that is due.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

import structlog

from shop_grpc import deadlines, telemetry
from shop_grpc.changes import ChangeSignal
from shop_grpc.errors import DeadlineExceeded, ShopError
from shop_grpc.storage import utcnow
from shop_order.domain import saga
from shop_order.domain.errors import LeaseLost
from shop_order.domain.model import Lease, Order, Step
from shop_order.service_layer import metrics
from shop_order.service_layer.metrics import FailureReason
from shop_order.service_layer.ports import Dependencies
from shop_order.service_layer.saga_steps import STEPS, fail, gave_up_reason, refused_reason
from shop_order.service_layer.unit_of_work import UnitOfWorkFactory

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class SagaSettings:
    lease_seconds: float = 15.0
    """How long a replica may go silent before another takes its orders over; renewed every
    third of it while a step's call waits."""
    recovery_interval_seconds: float = 2.0
    """How often unfinished orders without a live driver are looked for."""
    give_up_seconds: float = 60.0
    """A forward step still failing this long after the order was placed, whatever the
    error, fails the order; undo steps never give up."""
    quick_retries: int = 3
    """Failed tries of a step retried at once, holding the order. After that the order is
    handed back with its next attempt time and claimed again when due, so an order that
    keeps failing holds no slot while it waits."""
    retry_initial_seconds: float = 0.1
    retry_max_seconds: float = 30.0
    """The wait before retrying a failing step doubles from the initial one up to this; the
    count of failed tries is kept with the order, so it grows across drives and replicas."""
    max_concurrent: int = 64
    """Orders driven at once by one replica."""


def _caller_gave_up(error: Exception) -> bool:
    left = deadlines.remaining()
    return isinstance(error, DeadlineExceeded) and left is not None and left <= 0


def _log_failure(emit: Callable[..., object], step: Step, error: Exception, event: str) -> None:
    """A dependency's failure by its message; our own bug with its traceback."""
    if isinstance(error, ShopError):
        emit(event, step=step.value, error=str(error))
    else:
        emit(event, step=step.value, exc_info=error)


def _span_attributes(order: Order) -> dict[str, str | int]:
    """What a trace may show of an order: ids, counts and amounts, never card or user details."""
    attributes: dict[str, str | int] = {
        "shop.order.id": order.order_id,
        "shop.order.lines": len(order.lines),
        "shop.order.items": sum(line.quantity for line in order.lines),
    }
    if order.total is not None:
        attributes["shop.order.amount_minor"] = order.total.amount_minor
        attributes["shop.order.currency"] = order.total.currency
    return attributes


class SagaRunner:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        deps: Dependencies,
        lease: Lease,
        signal: ChangeSignal,
        settings: SagaSettings,
    ) -> None:
        self.uow = uow
        self.deps = deps
        self.lease = lease
        self.signal = signal
        self.settings = settings
        self._tasks: dict[str, asyncio.Task[Order | None]] = {}
        self._slots = asyncio.Semaphore(settings.max_concurrent)

    def start(self, order_id: str, *, claimed: bool = False, placed: Order | None = None) -> None:
        """Drives the order in the background unless this replica already is.

        `placed` is the order as this replica has just stored it, under its lease: the drive
        starts from it instead of reading it back.
        """
        if order_id in self._tasks:
            return
        task = asyncio.create_task(
            self._drive(order_id, claimed, _copy(placed) if placed else None),
            name=f"saga-{order_id}",
        )
        self._tasks[order_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(order_id, None))

    def drive_of(self, order_id: str) -> asyncio.Task[Order | None] | None:
        """This replica's drive of the order, if it is driving it. The task ends with the
        order as committed final, or None when the drive stopped short of that (the order
        handed back to wait for a retry, the lease lost, the runner stopped)."""
        return self._tasks.get(order_id)

    async def recover_forever(self) -> None:
        while True:
            try:
                await self.recover_once()
            except Exception:
                log.exception("recovery scan failed")
            await asyncio.sleep(self.settings.recovery_interval_seconds)

    async def recover_once(self) -> list[str]:
        """Claims unfinished orders nobody live is driving and drives them."""
        limit = max(self.settings.max_concurrent - len(self._tasks), 0)
        order_ids: list[str] = []
        if limit:
            async with self.uow() as uow:
                order_ids = await uow.orders.claim_unfinished(self.lease, utcnow(), limit)
                await uow.commit()
        metrics.recovery_claimed(len(order_ids))
        # Apart, in a read-only transaction: on SQLite the claim holds the one write lock.
        async with self.uow(readonly=True) as uow:
            backlog = await uow.orders.backlog()
        metrics.backlog_seen(backlog.unfinished, backlog.oldest_create_time, utcnow())
        for order_id in order_ids:
            log.info("recovering order", order_id=order_id)
            self.start(order_id, claimed=True)
        return order_ids

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _drive(self, order_id: str, claimed: bool, order: Order | None) -> Order | None:
        async with self._slots:
            if order is None:
                order = await self._take(order_id, claimed)
            if order is None:
                return None
            with structlog.contextvars.bound_contextvars(order_id=order_id):
                try:
                    return await self._run(order)
                except LeaseLost:
                    log.warning("lease lost; another replica drives the order")
                except Exception:
                    log.exception("saga failed unexpectedly; retrying later")
                    order.attempts += 1
                    # If even this fails (the database is out of reach), the lease lapses.
                    with contextlib.suppress(Exception):
                        await self._release(order, retry_after=self._backoff(order))
                return None

    async def _take(self, order_id: str, claimed: bool) -> Order | None:
        """The order, once this replica holds its lease (`claimed`: it already does); None if
        another live replica holds it, or it is gone."""
        async with self.uow() as uow:
            if not claimed and not await uow.orders.claim(order_id, self.lease, utcnow()):
                return None
            order = await uow.orders.get(order_id)
            await uow.commit()
        return order

    async def _run(self, order: Order) -> Order | None:
        """Drives the order until it is final (returns it, as committed) or handed back to be
        tried again later (None)."""
        while True:
            if saga.apply_pending_cancel(order):
                order.attempts = 0
                order = await self._save(order)
                continue
            if order.is_final:
                return order  # the write that made it final gave the lease up
            step = order.step
            forward = order.is_moving_forward
            began = time.perf_counter()
            try:
                with telemetry.span(f"saga {step.value}", _span_attributes(order)) as span:
                    await self._while_leased(order, STEPS[step](order, self.deps))
                    span.set_attribute("shop.saga.next_step", order.step.value)
            except LeaseLost:
                raise
            except Exception as error:
                if _caller_gave_up(error):
                    # The saga started inside a call whose deadline has now passed; it
                    # carries on with budgets of its own rather than failing fast until
                    # the recovery loop takes over.
                    metrics.step_tried(step, metrics.RETRY, began)
                    deadlines.bind(None)
                    continue
                if not self._ends_step(order, step, error):
                    metrics.step_tried(step, metrics.RETRY, began)
                    if await self._wait_to_retry(order):
                        continue
                    return None
            if forward and order.undo_outcome is not None:
                metrics.step_tried(step, metrics.FAILED, began)
            elif order.step is not step:
                metrics.step_tried(step, metrics.DONE, began)
            # else the step only noted something before its call (CHARGING_PAYMENT records
            # that the charge goes out): not a try; the next pass makes it.
            order.attempts = 0
            if order.step is not step:
                # At info, one line per order: the step that ends it. Each step is at debug
                # (SHOP_LOG_LEVEL=debug), in the order's trace, and in its row.
                emit = log.info if order.is_final else log.debug
                emit("saga step", step=step.value, next=order.step.value)
            # Lines change only when the reservation prices them.
            order = await self._save(order, lines=step is Step.RESERVING_STOCK)

    async def _wait_to_retry(self, order: Order) -> bool:
        """Counts a failed try and waits for the next: here while the order has quick retries
        left (True), else by handing it back, due again after its backoff (False)."""
        order.attempts += 1
        delay = self._backoff(order)
        if order.attempts > self.settings.quick_retries:
            await self._release(order, retry_after=delay)
            return False
        await self._while_leased(order, asyncio.sleep(delay))
        # Still ours? Else another replica drives the order now, and this one must not retry.
        await self._renew(order)
        return True

    async def _while_leased(self, order: Order, work: Awaitable[None]) -> None:
        """Awaits `work` (a step's call, or a wait before retrying one) while renewing the
        order's lease every third of its length, so that no other replica takes the order
        over meanwhile. If a renewal finds the lease gone, `work` is cancelled and LeaseLost
        raised: a call this replica has not sent yet is never sent late."""
        task = asyncio.ensure_future(work)
        try:
            while not task.done():
                await asyncio.wait({task}, timeout=self.settings.lease_seconds / 3)
                if not task.done():
                    await self._renew(order)
        except BaseException:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            raise
        task.result()

    async def _renew(self, order: Order) -> None:
        """Extends the lease, or raises LeaseLost; notes a cancel asked for meanwhile."""
        try:
            async with self.uow() as uow:
                order.cancel_requested = await uow.orders.renew(
                    order.order_id, self.lease, utcnow()
                )
                await uow.commit()
        except LeaseLost:
            raise
        except Exception as error:
            # Unable to renew, this replica cannot tell whether the lease still holds:
            # it stops as if it had lost it, and the lease lapses if it had not.
            log.warning("cannot renew the lease; stopping", error=str(error))
            raise LeaseLost(order.order_id) from error

    def _ends_step(self, order: Order, step: Step, error: Exception) -> bool:
        """Decides what a failed step means: True if it failed the order (now undoing),
        False if the step is to be tried again."""
        if not order.is_moving_forward:
            # Undo steps are retried until they succeed: something may still be held or
            # charged. An answer their step does not expect needs a person; say so loudly.
            trouble = isinstance(error, ShopError) and error.retryable
            emit = log.warning if trouble else log.error
            _log_failure(emit, step, error, "undo step failed; retrying with backoff")
            return False
        if isinstance(error, ShopError) and not error.retryable:
            log.warning("dependency refused the step", step=step.value, error=str(error))
            fail(order, FailureReason.REFUSED, refused_reason(step, error))
            return True
        if self._until_give_up(order) <= 0:
            _log_failure(log.warning, step, error, "step failed; giving the order up")
            reason = gave_up_reason(step, error, self.settings.give_up_seconds)
            fail(order, FailureReason.GAVE_UP, reason)
            return True
        _log_failure(log.warning, step, error, "step failed; retrying")
        return False

    def _until_give_up(self, order: Order) -> float:
        assert order.create_time is not None
        give_up_at = order.create_time + timedelta(seconds=self.settings.give_up_seconds)
        return (give_up_at - utcnow()).total_seconds()

    def _backoff(self, order: Order) -> float:
        """Seconds before the next try after `order.attempts` failed ones in a row: doubling,
        capped, drawn from the upper half so that orders failing together spread out, and for
        a forward step no later than its give-up time, when the last try decides."""
        settings = self.settings
        exponent = min(order.attempts - 1, 32)
        ceiling = min(settings.retry_initial_seconds * 2**exponent, settings.retry_max_seconds)
        delay = random.uniform(ceiling / 2, ceiling)
        if order.is_moving_forward:
            delay = min(delay, max(self._until_give_up(order), 0.0))
        return delay

    async def _save(self, order: Order, *, lines: bool = False) -> Order:
        """Commits the drive's progress; the write that makes an order final is counted."""
        async with self.uow() as uow:
            await uow.orders.save(order, self.lease, utcnow(), lines=lines)
            await uow.commit()
        if order.is_final:
            metrics.order_finished(order.status)
        self.signal.notify(order.order_id)
        return order

    async def _release(self, order: Order, retry_after: float | None = None) -> None:
        retry_at = None if retry_after is None else utcnow() + timedelta(seconds=retry_after)
        async with self.uow() as uow:
            await uow.orders.release(order, self.lease, retry_at)
            await uow.commit()


def _copy(order: Order) -> Order:
    """A copy the drive's changes do not reach (lines are replaced, never edited)."""
    return dataclasses.replace(order, lines=list(order.lines))
