"""money: integer minor units, one currency at a time."""

from __future__ import annotations

import pytest

from shop_grpc.money import CurrencyMismatch, Money


def test_money_adds_in_minor_units_and_refuses_to_mix_currencies():
    assert Money("USD", 1999) + Money("USD", 1) == Money("USD", 2000)
    assert Money("USD", 1250) * 3 == Money("USD", 3750)
    assert str(Money("USD", 1999)) == "19.99 USD"
    with pytest.raises(CurrencyMismatch):
        Money("USD", 1) + Money("EUR", 1)


def test_money_subtracts_and_shows_negative_amounts_with_their_sign():
    assert Money("EUR", 500) - Money("EUR", 505) == Money("EUR", -5)
    assert str(Money("EUR", -5)) == "-0.05 EUR"
    assert Money.zero("EUR") + Money("EUR", 7) == Money("EUR", 7)
    with pytest.raises(CurrencyMismatch) as raised:
        Money("EUR", 1) - Money("USD", 1)
    assert raised.value.reason == "MIXED_CURRENCIES"
