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
