"""What each saga step calls, and what the answers it expects mean for the order.

A step action makes its call and moves the order on (``domain.saga``). Answers that
belong to the step (a user that does not exist, short stock, a decline) are decided
here; anything else is raised to the runner, which retries trouble that passes
(``ShopError.retryable``) and fails a forward step on any other answer, with the
reason from ``refused_reason``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable

import structlog

from shop_grpc.errors import FailedPrecondition, InvalidArgument, NotFound, ShopError
from shop_order.domain import saga
from shop_order.domain.model import Order, Status, Step
from shop_order.service_layer import metrics
from shop_order.service_layer.metrics import FailureReason
from shop_order.service_layer.ports import Dependencies, PaymentOutcome

log = structlog.get_logger(__name__)

StepAction = Callable[[Order, Dependencies], Awaitable[None]]

# What each forward step does, as a failure reason names it.
_WHAT = {
    Step.ACCEPTED: "order start",
    Step.CHECKING_USER: "user check",
    Step.RESERVING_STOCK: "stock reservation",
    Step.CHARGING_PAYMENT: "payment",
    Step.COMMITTING_STOCK: "stock commit",
}


async def _start(order: Order, deps: Dependencies) -> None:
    saga.begin(order)


def fail(order: Order, reason: FailureReason, text: str) -> None:
    """Fails the order at its current step: `text` is kept with the order, `reason` counted."""
    metrics.order_failed(order.step, reason)
    saga.undo(order, Status.FAILED, text)


def _charge_refused(order: Order, payment_id: str, reason: FailureReason, text: str) -> None:
    metrics.order_failed(order.step, reason)
    saga.charge_refused(order, payment_id, text)


async def _check_user(order: Order, deps: Dependencies) -> None:
    try:
        await deps.users.ensure_exists(order.user_id)
    except NotFound:
        fail(order, FailureReason.USER_NOT_FOUND, f"user {order.user_id} does not exist")
        return
    saga.user_checked(order)


async def _reserve_stock(order: Order, deps: Dependencies) -> None:
    try:
        reservation = await deps.inventory.reserve(order.order_id, order.lines)
    except NotFound as error:
        text = f"product {error.resource_name} does not exist"
        fail(order, FailureReason.PRODUCT_NOT_FOUND, text)
    except FailedPrecondition as error:
        # Short stock names each short line; RESERVATION_CLOSED (the order was released
        # while this call was on its way) and the rest are refusals like any other.
        short = "; ".join(f"{v.subject}: {v.description}" for v in error.violations)
        if short:
            fail(order, FailureReason.OUT_OF_STOCK, f"out of stock: {short}")
        else:
            fail(order, FailureReason.REFUSED, refused_reason(order.step, error))
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
        text = f"payment not possible: {error.message}"
        _charge_refused(order, "", FailureReason.PAYMENT_NOT_POSSIBLE, text)
        return
    if payment.outcome is PaymentOutcome.SUCCEEDED:
        saga.charged(order, payment.payment_id)
    else:
        text = f"payment {payment.outcome.value.lower()}: {payment.failure_code or 'no reason'}"
        _charge_refused(order, payment.payment_id, FailureReason.PAYMENT_DECLINED, text)


async def _commit_stock(order: Order, deps: Dependencies) -> None:
    try:
        await deps.inventory.commit(order.order_id)
    except (NotFound, FailedPrecondition) as error:
        text = f"stock reservation lapsed: {error.message}"
        fail(order, FailureReason.RESERVATION_LAPSED, text)
        return
    saga.confirmed(order)


async def _refund_payment(order: Order, deps: Dependencies) -> None:
    assert order.total is not None
    try:
        # Charging again is idempotent per order: it returns the charge that may or may not
        # have landed before, and afterwards no late duplicate can charge the card again.
        payment = await deps.payments.charge(order.order_id, order.payment_method_id, order.total)
    except (NotFound, FailedPrecondition, InvalidArgument) as error:
        # The payment service checks these before it looks for an earlier charge of the
        # order, which the same request would have met too: nothing was ever charged.
        log.warning("no charge to refund", order_id=order.order_id, error=error.message)
        saga.refunded(order)
        return
    order.payment_id = payment.payment_id
    if payment.outcome is PaymentOutcome.SUCCEEDED:
        await deps.payments.refund_all(payment.payment_id, f"refund-{order.order_id}")
    saga.refunded(order)


async def _release_stock(order: Order, deps: Dependencies) -> None:
    with contextlib.suppress(NotFound):  # an inventory without tombstones: nothing to release
        await deps.inventory.release(order.order_id)
    saga.finish_undo(order)


STEPS: dict[Step, StepAction] = {
    Step.ACCEPTED: _start,
    Step.CHECKING_USER: _check_user,
    Step.RESERVING_STOCK: _reserve_stock,
    Step.CHARGING_PAYMENT: _charge_payment,
    Step.COMMITTING_STOCK: _commit_stock,
    Step.REFUNDING_PAYMENT: _refund_payment,
    Step.RELEASING_STOCK: _release_stock,
}


def refused_reason(step: Step, error: ShopError) -> str:
    """Why a dependency's answer failed the order: ``user check refused: INVALID_ARGUMENT
    user_id: must be a UUID``. Built from status codes, field paths and our services' own
    messages, which never carry card details."""
    return f"{_WHAT.get(step, step.value.lower())} refused: {_describe(error)}"


def gave_up_reason(step: Step, error: Exception, seconds: float) -> str:
    """Why a forward step that kept failing failed the order at last."""
    return f"gave up after {seconds:g} s: {_WHAT.get(step, step.value.lower())} failed: " + (
        _describe(error) if isinstance(error, ShopError) else "internal error"
    )


def _describe(error: ShopError) -> str:
    if isinstance(error, InvalidArgument) and error.violations:
        detail = "; ".join(f"{v.field}: {v.description}" for v in error.violations)
    else:
        # A bare status arrives as "CODE: message" (shop_grpc.status); name the code once.
        detail = error.message.removeprefix(f"{error.code}: ")
    return f"{error.code} {detail}".rstrip()
