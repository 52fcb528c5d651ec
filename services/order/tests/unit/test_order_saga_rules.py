"""The saga's transitions: what gets undone, and where each path ends."""

from shop_grpc.money import Money
from shop_order.domain import saga
from shop_order.domain.model import Order, OrderLine, Status, Step


def new_order() -> Order:
    return Order("o-1", "alice", [OrderLine("widget", 2)], "pm-1", "req-1")


def reserved_order() -> Order:
    order = new_order()
    saga.begin(order)
    saga.user_checked(order)
    saga.stock_reserved(order, [OrderLine("widget", 2, Money("USD", 1250))], Money("USD", 2500))
    return order


def test_happy_path_visits_every_forward_step_and_confirms():
    order = reserved_order()
    assert order.step is Step.CHARGING_PAYMENT
    saga.charge_sent(order)
    saga.charged(order, "pay-1")
    assert order.step is Step.COMMITTING_STOCK
    saga.confirmed(order)
    assert (order.status, order.step, order.is_final) == (Status.CONFIRMED, Step.DONE, True)


def test_failure_before_reserving_has_nothing_to_undo():
    order = new_order()
    saga.begin(order)
    saga.undo(order, Status.FAILED, "user gone")
    assert (order.status, order.step, order.failure_reason) == (
        Status.FAILED,
        Step.DONE,
        "user gone",
    )


def test_failure_while_reserving_releases_stock_but_refunds_nothing():
    order = new_order()
    saga.begin(order)
    saga.user_checked(order)
    saga.undo(order, Status.FAILED, "out of stock")
    assert order.step is Step.RELEASING_STOCK


def test_cancel_before_the_charge_is_sent_never_touches_payment():
    order = reserved_order()
    order.cancel_requested = True
    assert saga.apply_pending_cancel(order)
    assert order.step is Step.RELEASING_STOCK
    assert order.undo_outcome is Status.CANCELLED


def test_once_the_charge_may_have_gone_out_undo_starts_with_a_refund():
    order = reserved_order()
    saga.charge_sent(order)
    saga.undo(order, Status.FAILED, "payment unreachable")
    assert order.step is Step.REFUNDING_PAYMENT
    saga.refunded(order)
    assert order.step is Step.RELEASING_STOCK
    saga.finish_undo(order)
    assert (order.status, order.step) == (Status.FAILED, Step.DONE)


def test_a_decline_skips_the_refund():
    order = reserved_order()
    saga.charge_sent(order)
    saga.charge_refused(order, "pay-1", "payment declined: card_declined")
    assert order.step is Step.RELEASING_STOCK
    assert order.payment_id == "pay-1"


def test_cancelling_a_confirmed_order_refunds_and_returns_stock():
    order = reserved_order()
    saga.charge_sent(order)
    saga.charged(order, "pay-1")
    saga.confirmed(order)
    saga.request_cancel(order)
    assert order.step is Step.REFUNDING_PAYMENT
    assert order.status is Status.CONFIRMED  # until the undo is done
    saga.refunded(order)
    saga.finish_undo(order)
    assert order.status is Status.CANCELLED


def test_a_cancel_asked_in_flight_waits_for_the_next_step():
    order = reserved_order()
    saga.request_cancel(order)
    assert order.cancel_requested
    assert order.step is Step.CHARGING_PAYMENT


def test_a_cancel_that_arrives_as_the_order_confirms_still_cancels_it():
    order = reserved_order()
    order.cancel_requested = True
    saga.charge_sent(order)
    saga.charged(order, "pay-1")
    saga.confirmed(order)
    assert saga.apply_pending_cancel(order)
    assert order.step is Step.REFUNDING_PAYMENT


def test_undo_is_started_only_once():
    order = reserved_order()
    saga.charge_sent(order)
    saga.undo(order, Status.FAILED, "first")
    saga.undo(order, Status.CANCELLED, "second")
    assert (order.undo_outcome, order.failure_reason) == (Status.FAILED, "first")
