"""The order saga's transitions, as pure functions over an Order.

    ACCEPTED -> CHECKING_USER -> RESERVING_STOCK -> CHARGING_PAYMENT -> COMMITTING_STOCK -> DONE
                                                                          (CONFIRMED)
    any failure or cancel:  [REFUNDING_PAYMENT ->] [RELEASING_STOCK ->] DONE (FAILED | CANCELLED)

Undo starts at the first step that has something to undo: a refund only if the
card may have been charged, a release only if stock may have been reserved.
"""

from __future__ import annotations

from shop_grpc.money import Money
from shop_order.domain.model import Order, OrderLine, Status, Step

CANCELLED_REASON = "cancelled by request"


def begin(order: Order) -> None:
    order.step = Step.CHECKING_USER


def user_checked(order: Order) -> None:
    order.step = Step.RESERVING_STOCK


def stock_reserved(order: Order, lines: list[OrderLine], total: Money) -> None:
    order.lines = lines
    order.total = total
    order.step = Step.CHARGING_PAYMENT


def charge_sent(order: Order) -> None:
    order.charge_attempted = True


def charged(order: Order, payment_id: str) -> None:
    order.payment_id = payment_id
    order.step = Step.COMMITTING_STOCK


def charge_refused(order: Order, payment_id: str, reason: str) -> None:
    """A decline or processor failure: nothing was taken, so only the stock is undone."""
    order.payment_id = payment_id
    order.undo_outcome = Status.FAILED
    order.failure_reason = reason
    order.step = Step.RELEASING_STOCK


def confirmed(order: Order) -> None:
    order.status = Status.CONFIRMED
    order.step = Step.DONE


def undo(order: Order, outcome: Status, reason: str) -> None:
    """Starts undoing whatever the saga may have done; ends in `outcome`."""
    if order.is_undoing:
        return
    was_confirmed = order.status is Status.CONFIRMED
    order.undo_outcome = outcome
    order.failure_reason = reason
    if order.charge_attempted or was_confirmed:
        order.step = Step.REFUNDING_PAYMENT
    elif order.step in (Step.RESERVING_STOCK, Step.CHARGING_PAYMENT, Step.COMMITTING_STOCK):
        order.step = Step.RELEASING_STOCK
    else:
        finish_undo(order)


def refunded(order: Order) -> None:
    order.step = Step.RELEASING_STOCK


def finish_undo(order: Order) -> None:
    order.status = order.undo_outcome or Status.FAILED
    order.step = Step.DONE


def request_cancel(order: Order) -> None:
    """A confirmed order is undone now; one in flight stops at its next step."""
    if order.step is Step.DONE and order.status is Status.CONFIRMED:
        undo(order, Status.CANCELLED, CANCELLED_REASON)
    else:
        order.cancel_requested = True


def apply_pending_cancel(order: Order) -> bool:
    """Between two steps, honours a cancel asked for while the order was in flight."""
    confirmed_now = order.step is Step.DONE and order.status is Status.CONFIRMED
    if order.cancel_requested and (order.is_moving_forward or confirmed_now):
        undo(order, Status.CANCELLED, CANCELLED_REASON)
        return True
    return False
