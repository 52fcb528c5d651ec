from datetime import date

import pytest

from shop_payment.domain.cards import Card, brand_of, card_problems, luhn_valid, normalize_number

TODAY = date(2030, 6, 15)


def card(number="4242424242424242", exp_month=12, exp_year=2031, cvc="123") -> Card:
    return Card(number=number, exp_month=exp_month, exp_year=exp_year, cvc=cvc)


@pytest.mark.parametrize(
    "number",
    ["4242424242424242", "4000000000000002", "5555555555554444", "378282246310005", "79927398713"],
)
def test_luhn_accepts_valid_numbers(number):
    assert luhn_valid(number)


@pytest.mark.parametrize("number", ["4242424242424241", "79927398710", "4242x42424242424", ""])
def test_luhn_rejects_invalid_numbers(number):
    assert not luhn_valid(number)


@pytest.mark.parametrize(
    ("number", "brand"),
    [
        ("4242424242424242", "visa"),
        ("5105105105105100", "mastercard"),
        ("5555555555554444", "mastercard"),
        ("2221000000000009", "mastercard"),
        ("2720990000000000", "mastercard"),
        ("2220990000000000", "unknown"),
        ("2721000000000000", "unknown"),
        ("5000000000000000", "unknown"),
        ("5600000000000000", "unknown"),
        ("340000000000009", "amex"),
        ("378282246310005", "amex"),
        ("6011111111111117", "unknown"),
    ],
)
def test_brand_comes_from_the_prefix(number, brand):
    assert brand_of(number) == brand


def test_spaces_are_ignored():
    assert normalize_number(" 4242 4242 4242 4242 ") == "4242424242424242"


def test_a_good_card_has_no_problems():
    assert card_problems(card(), TODAY) == []


def test_this_month_is_not_past():
    assert card_problems(card(exp_month=6, exp_year=2030), TODAY) == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"number": "4242424242424241"}, [("number", "fails the Luhn check")]),
        ({"number": "42424242424"}, [("number", "must be 12 to 19 digits")]),
        ({"number": "4" * 20}, [("number", "must be 12 to 19 digits")]),
        ({"number": "4242-4242-4242-4242"}, [("number", "must be 12 to 19 digits")]),
        ({"number": ""}, [("number", "is required")]),
        ({"exp_month": 0}, [("exp_month", "must be between 1 and 12")]),
        ({"exp_month": 13}, [("exp_month", "must be between 1 and 12")]),
        ({"exp_month": 5, "exp_year": 2030}, [("exp_month", "is in the past")]),
        ({"exp_year": 2029}, [("exp_year", "is in the past")]),
        ({"exp_year": 31}, [("exp_year", "must be a four-digit year")]),
        ({"cvc": "12"}, [("cvc", "must be 3 or 4 digits")]),
        ({"cvc": "12345"}, [("cvc", "must be 3 or 4 digits")]),
        ({"cvc": "12a"}, [("cvc", "must be 3 or 4 digits")]),
    ],
)
def test_card_problems_name_the_field(changes, expected):
    assert card_problems(card(**changes), TODAY) == expected


def test_repr_hides_number_and_cvc():
    shown = repr(card(cvc="9876"))
    assert "4242424242424242" not in shown
    assert "9876" not in shown
    assert card().last4 == "4242"


@pytest.mark.parametrize("number", ["\u00b2" * 16, "4242424242424\u00b242", "\u0664" * 16])
def test_unicode_digits_are_not_digits(number):
    assert luhn_valid(number) is False
    assert [field for field, _ in card_problems(card(number), TODAY)] == ["number"]
