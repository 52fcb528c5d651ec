"""Drives orders through their saga, durably, on any number of replicas.

Each step's state is committed before the step's call goes out, and every
call is idempotent on the other side (keyed by order id), so after a crash
the step is simply run again. A replica drives an order only while it holds
the order's lease; the recovery loop picks up orders whose lease lapsed
(their replica died) and, at start-up, those an earlier boot of this replica
left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

import structlog

from shop_grpc import deadlines, telemetry
from shop_grpc.changes import ChangeSignal
from shop_grpc.errors import DeadlineExceeded, FailedPrecondition, NotFound, Unavailable
from shop_grpc.storage import utcnow
from shop_order.adapters.repository import Lease
from shop_order.domain import saga
from shop_order.domain.errors import LeaseLost
from shop_order.domain.model import Order, Status, Step
from shop_order.service_layer.ports import Dependencies, PaymentOutcome
from shop_order.service_layer.unit_of_work import UnitOfWorkFactory

log = structlog.get_logger(__name__)

StepAction = Callable[[Order, Dependencies], Awaitable[None]]


@dataclass(frozen=True)
class SagaSettings:
    lease_seconds: float = 15.0
    """How long a replica may go silent before another takes its orders over."""
    recovery_interval_seconds: float = 2.0
    """How often unfinished orders without a live driver are looked for."""
    give_up_seconds: float = 60.0
    """A step that cannot reach its dependency for this long (since the order was placed)
    fails the order; undo steps never give up."""
    retries_per_drive: int = 5
    """Unreachable-dependency retries before the order is left to the recovery loop."""
    max_concurrent: int = 64
    """Orders driven at once by one replica."""


async def _start(order: Order, deps: Dependencies) -> None:
    saga.begin(order)


async def _check_user(order: Order, deps: Dependencies) -> None:
    try:
        await deps.users.ensure_exists(order.user_id)
    except NotFound:
        saga.undo(order, Status.FAILED, f"user {order.user_id} does not exist")
        return
    saga.user_checked(order)


async def _reserve_stock(order: Order, deps: Dependencies) -> None:
    try:
        reservation = await deps.inventory.reserve(order.order_id, order.lines)
    except NotFound as error:
        saga.undo(order, Status.FAILED, f"product {error.resource_name} does not exist")
    except FailedPrecondition as error:
        short = "; ".join(f"{v.subject}: {v.description}" for v in error.violations)
        saga.undo(order, Status.FAILED, f"out of stock: {short}" if short else error.message)
    else:
        saga.stock_reserved(order, reservation.lines, reservation.total)


async def _charge_payment(order: Order, deps: Dependencies) -> None:
    if not order.charge_attempted:
        # Recorded first, so a crash after the charge went out is undone with a refund.
        saga.charge_sent(order)
        return
    assert order.total is not None
    try:
        payment = await deps.payments.charge(order.order_id, order.payment_method_id, order.total)
    except (NotFound, FailedPrecondition) as error:
        saga.charge_refused(order, "", f"payment not possible: {error.message}")
        return
    if payment.outcome is PaymentOutcome.SUCCEEDED:
        saga.charged(order, payment.payment_id)
    else:
        reason = f"payment {payment.outcome.value.lower()}: {payment.failure_code or 'no reason'}"
        saga.charge_refused(order, payment.payment_id, reason)


async def _commit_stock(order: Order, deps: Dependencies) -> None:
    try:
        await deps.inventory.commit(order.order_id)
    except (NotFound, FailedPrecondition) as error:
        saga.undo(order, Status.FAILED, f"stock reservation lapsed: {error.message}")
        return
    saga.confirmed(order)


async def _refund_payment(order: Order, deps: Dependencies) -> None:
    assert order.total is not None
    try:
        # Charging again is idempotent per order: it returns the charge that may or may not
        # have landed before, and afterwards no late duplicate can charge the card again.
        payment = await deps.payments.charge(order.order_id, order.payment_method_id, order.total)
    except (NotFound, FailedPrecondition) as error:
        log.warning("no charge to refund", order_id=order.order_id, error=error.message)
        saga.refunded(order)
        return
    order.payment_id = payment.payment_id
    if payment.outcome is PaymentOutcome.SUCCEEDED:
        await deps.payments.refund_all(payment.payment_id, f"refund-{order.order_id}")
    saga.refunded(order)


async def _release_stock(order: Order, deps: Dependencies) -> None:
    with contextlib.suppress(NotFound):  # the reservation never landed: nothing to release
        await deps.inventory.release(order.order_id)
    saga.finish_undo(order)


def _caller_gave_up(error: Exception) -> bool:
    left = deadlines.remaining()
    return isinstance(error, DeadlineExceeded) and left is not None and left <= 0


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


STEPS: dict[Step, StepAction] = {
    Step.ACCEPTED: _start,
    Step.CHECKING_USER: _check_user,
    Step.RESERVING_STOCK: _reserve_stock,
    Step.CHARGING_PAYMENT: _charge_payment,
    Step.COMMITTING_STOCK: _commit_stock,
    Step.REFUNDING_PAYMENT: _refund_payment,
    Step.RELEASING_STOCK: _release_stock,
}


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
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._slots = asyncio.Semaphore(settings.max_concurrent)

    def start(self, order_id: str, *, claimed: bool = False) -> None:
        """Drives the order in the background unless this replica already is."""
        if order_id in self._tasks:
            return
        task = asyncio.create_task(self._drive(order_id, claimed), name=f"saga-{order_id}")
        self._tasks[order_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(order_id, None))

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
        if not limit:
            return []
        async with self.uow() as uow:
            order_ids = await uow.orders.claim_unfinished(self.lease, utcnow(), limit)
            await uow.commit()
        for order_id in order_ids:
            log.info("recovering order", order_id=order_id)
            self.start(order_id, claimed=True)
        return order_ids

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _drive(self, order_id: str, claimed: bool) -> None:
        async with self._slots:
            async with self.uow() as uow:
                if not claimed and not await uow.orders.claim(order_id, self.lease, utcnow()):
                    return
                order = await uow.orders.get(order_id)
                await uow.commit()
            if order is None:
                return
            with structlog.contextvars.bound_contextvars(order_id=order_id):
                try:
                    await self._run(order)
                except LeaseLost:
                    log.warning("lease lost; another replica drives the order")
                except Exception:
                    log.exception("saga step failed unexpectedly; will retry")
                    await self._release(order, retry_after=self.settings.recovery_interval_seconds)

    async def _run(self, order: Order) -> None:
        failures = 0
        while True:
            if saga.apply_pending_cancel(order):
                order = await self._save(order)
                continue
            if order.is_final:
                return  # the write that made it final gave the lease up
            step = order.step
            try:
                with telemetry.span(f"saga {step.value}", _span_attributes(order)) as span:
                    await STEPS[step](order, self.deps)
                    span.set_attribute("shop.saga.next_step", order.step.value)
            except (Unavailable, DeadlineExceeded) as error:
                if _caller_gave_up(error):
                    # The saga started inside a call whose deadline has now passed; it
                    # carries on with budgets of its own rather than failing fast until
                    # the recovery loop takes over.
                    deadlines.bind(None)
                    continue
                failures += 1
                if not self._handle_unreachable(order, error, failures):
                    await self._release(order, retry_after=self._backoff(failures))
                    return
                if order.step is step:
                    await asyncio.sleep(self._backoff(failures))
                    continue
            else:
                failures = 0
            if order.step is not step:
                log.info("saga step", step=step.value, next=order.step.value)
            # Lines change only when the reservation prices them.
            order = await self._save(order, lines=step is Step.RESERVING_STOCK)

    def _handle_unreachable(self, order: Order, error: Exception, failures: int) -> bool:
        """Decides what an unreachable dependency means; False leaves the order for later."""
        assert order.create_time is not None
        age = utcnow() - order.create_time
        if order.is_moving_forward and age > timedelta(seconds=self.settings.give_up_seconds):
            saga.undo(order, Status.FAILED, f"a service stayed unreachable: {error}")
            return True
        log.warning("dependency unreachable", step=order.step.value, error=str(error))
        return failures < self.settings.retries_per_drive

    @staticmethod
    def _backoff(failures: int) -> float:
        return float(min(0.1 * 2**failures, 2.0))

    async def _save(self, order: Order, *, lines: bool = False) -> Order:
        async with self.uow() as uow:
            await uow.orders.save(order, self.lease, utcnow(), lines=lines)
            await uow.commit()
        self.signal.notify(order.order_id)
        return order

    async def _release(self, order: Order, retry_after: float | None = None) -> None:
        retry_at = None if retry_after is None else utcnow() + timedelta(seconds=retry_after)
        async with self.uow() as uow:
            await uow.orders.release(order.order_id, self.lease, retry_at)
            await uow.commit()
