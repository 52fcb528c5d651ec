from shop_cli.consistency import (
    OrderFacts,
    PaymentFacts,
    StockFacts,
    all_violations,
    order_violations,
    stock_checks,
    stock_violations,
)


def order(order_id="o1", status="CONFIRMED", total=1000, quantities=None, payment_id=""):
    return OrderFacts(order_id, status, total, "USD", quantities or {"a": 1}, payment_id)


def payment(status="SUCCEEDED", amount=1000, refunded=0, payment_id="p1", currency="USD"):
    return PaymentFacts(payment_id, status, amount, currency, refunded)


def rules(violations):
    return [v.rule for v in violations]


def test_confirmed_order_with_one_matching_payment_is_consistent():
    assert order_violations(order(payment_id="p1"), [payment()]) == []


def test_confirmed_order_without_payment_is_a_violation():
    assert rules(order_violations(order(), [])) == ["paid"]


def test_confirmed_order_with_declined_payment_is_a_violation():
    assert rules(order_violations(order(), [payment(status="DECLINED")])) == ["paid"]


def test_confirmed_order_charged_another_amount_is_a_violation():
    assert rules(order_violations(order(total=1000), [payment(amount=900)])) == ["amount"]
    assert rules(order_violations(order(), [payment(currency="EUR")])) == ["amount"]


def test_confirmed_order_with_a_partial_refund_is_a_violation():
    assert rules(order_violations(order(), [payment(refunded=100)])) == ["refund"]


def test_confirmed_order_naming_another_payment_is_a_violation():
    violations = order_violations(order(payment_id="p9"), [payment(payment_id="p1")])
    assert rules(violations) == ["payment-id"]


def test_two_payments_for_one_order_is_a_violation():
    violations = order_violations(order(), [payment(payment_id="p1"), payment(payment_id="p2")])
    assert rules(violations) == ["one-payment"]
    assert "p1, p2" in violations[0].detail


def test_failed_order_may_have_no_declined_failed_or_fully_refunded_payment():
    failed = order(status="FAILED")
    assert order_violations(failed, []) == []
    assert order_violations(failed, [payment(status="DECLINED")]) == []
    assert order_violations(failed, [payment(status="FAILED")]) == []
    assert order_violations(failed, [payment(status="REFUNDED", refunded=1000)]) == []


def test_failed_order_with_money_taken_is_a_violation():
    failed = order(status="FAILED")
    assert rules(order_violations(failed, [payment(status="SUCCEEDED")])) == ["unpaid"]
    partly = payment(status="REFUNDED", refunded=400)
    assert rules(order_violations(failed, [partly])) == ["unpaid"]


def test_cancelled_order_follows_the_failed_rules():
    cancelled = order(status="CANCELLED")
    assert order_violations(cancelled, [payment(status="REFUNDED", refunded=1000)]) == []
    assert rules(order_violations(cancelled, [payment()])) == ["unpaid"]


def test_order_that_never_became_final_is_a_violation():
    assert rules(order_violations(order(status="PENDING"), [])) == ["final"]


def test_stock_taken_must_equal_units_in_confirmed_orders_only():
    orders = [
        order("o1", "CONFIRMED", quantities={"a": 2, "b": 1}),
        order("o2", "CONFIRMED", quantities={"a": 3}),
        order("o3", "FAILED", quantities={"a": 7}),
    ]
    initial = {"a": StockFacts(100, 0), "b": StockFacts(50, 0)}
    final = {"a": StockFacts(95, 0), "b": StockFacts(49, 0)}
    checks = stock_checks(initial, final, orders)
    assert [(c.product_id, c.taken, c.confirmed_units, c.ok) for c in checks] == [
        ("a", 5, 5, True),
        ("b", 1, 1, True),
    ]
    assert stock_violations(checks) == []


def test_stock_drift_and_leftover_reservations_are_violations():
    orders = [order("o1", "CONFIRMED", quantities={"a": 2})]
    initial = {"a": StockFacts(100, 0)}
    final = {"a": StockFacts(97, 1)}
    violations = stock_violations(stock_checks(initial, final, orders))
    assert rules(violations) == ["stock", "reserved"]
    assert all(v.subject == "a" for v in violations)


def test_all_violations_counts_every_broken_rule():
    orders = [order("o1", "CONFIRMED", quantities={"a": 1}), order("o2", "FAILED")]
    checks = stock_checks({"a": StockFacts(10, 0)}, {"a": StockFacts(9, 0)}, orders)
    payments = {"o1": [payment()], "o2": [payment(payment_id="p2")]}
    violations = all_violations(checks, orders, payments)
    assert [(v.subject, v.rule) for v in violations] == [("o2", "unpaid")]
