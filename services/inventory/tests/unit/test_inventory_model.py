from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shop_grpc.money import Money
from shop_inventory.domain.errors import (
    MixedCurrencies,
    OutOfStock,
    ProductNotFound,
    ReservationExpired,
    ReservationMismatch,
    ReservationReleased,
)
from shop_inventory.domain.model import Product, ReservationState, StockLevel, reserve

NOW = datetime(2025, 1, 1, tzinfo=UTC)
TTL = timedelta(minutes=10)


def _product(product_id: str, price: int = 100, currency: str = "USD") -> Product:
    return Product(product_id, product_id.upper(), "", Money(currency, price), NOW)


def _shelf(**available: int) -> tuple[dict[str, Product], dict[str, StockLevel]]:
    products = {pid: _product(pid) for pid in available}
    levels = {pid: StockLevel(pid, NOW, available=n) for pid, n in available.items()}
    return products, levels


def test_reserve_moves_available_to_reserved_and_prices_lines():
    products, levels = _shelf(a=5, b=2)
    products["b"] = _product("b", price=250)

    reservation = reserve("o1", [("a", 3), ("b", 2)], products, levels, NOW, TTL)

    assert (levels["a"].available, levels["a"].reserved) == (2, 3)
    assert (levels["b"].available, levels["b"].reserved) == (0, 2)
    assert reservation.total == Money("USD", 3 * 100 + 2 * 250)
    assert reservation.state is ReservationState.PENDING
    assert reservation.expire_time == NOW + TTL


def test_short_lines_each_get_a_violation_and_nothing_moves():
    products, levels = _shelf(a=1, b=9, c=0)

    with pytest.raises(OutOfStock) as caught:
        reserve("o1", [("a", 3), ("b", 2), ("c", 1)], products, levels, NOW, TTL)

    assert [(v.type, v.subject, v.description) for v in caught.value.violations] == [
        ("STOCK", "a", "requested 3, available 1"),
        ("STOCK", "c", "requested 1, available 0"),
    ]
    assert [lv.available for lv in levels.values()] == [1, 9, 0]
    assert all(lv.reserved == 0 for lv in levels.values())


def test_unknown_product_is_not_found():
    products, levels = _shelf(a=1)

    with pytest.raises(ProductNotFound):
        reserve("o1", [("a", 1), ("ghost", 1)], products, levels, NOW, TTL)
    assert levels["a"].available == 1


def test_one_reservation_needs_one_currency():
    products, levels = _shelf(a=1, b=1)
    products["b"] = _product("b", currency="EUR")

    with pytest.raises(MixedCurrencies):
        reserve("o1", [("a", 1), ("b", 1)], products, levels, NOW, TTL)


def test_commit_sells_once_then_is_a_no_op():
    products, levels = _shelf(a=5)
    reservation = reserve("o1", [("a", 2)], products, levels, NOW, TTL)

    assert reservation.commit(levels, NOW) is True
    assert reservation.commit(levels, NOW) is False
    assert (levels["a"].available, levels["a"].reserved, levels["a"].sold) == (3, 0, 2)


def test_release_of_committed_reservation_takes_sold_stock_back():
    products, levels = _shelf(a=5)
    reservation = reserve("o1", [("a", 2)], products, levels, NOW, TTL)
    reservation.commit(levels, NOW)

    assert reservation.release(levels, NOW) is True
    assert reservation.release(levels, NOW) is False
    assert (levels["a"].available, levels["a"].reserved, levels["a"].sold) == (5, 0, 0)
    with pytest.raises(ReservationReleased):
        reservation.commit(levels, NOW)


def test_expired_reservation_returns_stock_and_cannot_be_committed():
    products, levels = _shelf(a=5)
    reservation = reserve("o1", [("a", 2)], products, levels, NOW, TTL)

    assert not reservation.is_overdue(NOW + TTL - timedelta(seconds=1))
    assert reservation.is_overdue(NOW + TTL)
    reservation.expire(levels, NOW + TTL)

    assert reservation.state is ReservationState.EXPIRED
    assert (levels["a"].available, levels["a"].reserved) == (5, 0)
    with pytest.raises(ReservationExpired):
        reservation.commit(levels, NOW)
    assert reservation.release(levels, NOW) is False


def test_repeat_must_ask_for_the_same_lines():
    products, levels = _shelf(a=5, b=5)
    reservation = reserve("o1", [("a", 2), ("b", 1)], products, levels, NOW, TTL)

    reservation.ensure_same_lines([("b", 1), ("a", 2)])
    with pytest.raises(ReservationMismatch):
        reservation.ensure_same_lines([("a", 2)])


def test_stock_never_goes_negative():
    level = StockLevel("a", NOW, available=1)

    with pytest.raises(ValueError, match="cannot move"):
        level.hold(2, NOW)
    assert (level.available, level.reserved) == (1, 0)
