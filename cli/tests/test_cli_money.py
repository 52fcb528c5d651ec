import argparse

import pytest

from shop.common.v1 import money_pb2
from shop_cli.money import amount_argument, format_money, parse_minor_units


@pytest.mark.parametrize(
    ("text", "minor"),
    [
        ("19.99", 1999),
        ("12.5", 1250),
        ("24", 2400),
        ("0.01", 1),
        (" 7.10 ", 710),
        ("19.990", 1999),  # trailing zeros are still exact
        ("1e3", 100000),
        ("-3.00", -300),
        ("123456789012.34", 12345678901234),  # beyond float precision, still exact
    ],
)
def test_parses_decimal_text_into_exact_minor_units(text, minor):
    assert parse_minor_units(text) == minor


@pytest.mark.parametrize("text", ["1.999", "0.001", "19.995"])
def test_rejects_more_than_two_decimals(text):
    with pytest.raises(ValueError, match="more than 2 decimal places"):
        parse_minor_units(text)


@pytest.mark.parametrize("text", ["", "abc", "1,50", "NaN", "Infinity", "1.2.3"])
def test_rejects_text_that_is_not_an_amount(text):
    with pytest.raises(ValueError, match=r"not a (finite amount|number)"):
        parse_minor_units(text)


def test_argument_type_reports_a_usage_error():
    with pytest.raises(argparse.ArgumentTypeError, match="decimal places"):
        amount_argument("1.234")


def test_formats_minor_units_with_currency():
    assert format_money(money_pb2.Money(currency_code="USD", amount_minor=4850)) == "48.50 USD"
    assert format_money(money_pb2.Money(currency_code="EUR", amount_minor=5)) == "0.05 EUR"


def test_unset_money_shows_a_dash():
    assert format_money(money_pb2.Money()) == "-"
