import pytest

from shop_grpc.money import Money
from shop_payment.domain.cards import Card
from shop_payment.domain.model import PaymentStatus
from shop_payment.domain.processor import DeterministicProcessor, Outcome

USD = Money("USD", 1000)


def tokenize(number: str) -> str:
    return DeterministicProcessor().tokenize(Card(number, 12, 2099, "123"))


@pytest.mark.parametrize(
    ("number", "token", "status", "code"),
    [
        ("4242424242424242", "approve", PaymentStatus.SUCCEEDED, ""),
        ("4000000000000002", "decline:card_declined", PaymentStatus.DECLINED, "card_declined"),
        (
            "4000000000009995",
            "decline:insufficient_funds",
            PaymentStatus.DECLINED,
            "insufficient_funds",
        ),
        ("4000000000000119", "fail:processing_error", PaymentStatus.FAILED, "processing_error"),
        ("5555555555554444", "approve", PaymentStatus.SUCCEEDED, ""),
    ],
)
def test_test_cards_decide_the_outcome(number, token, status, code):
    assert tokenize(number) == token
    result = DeterministicProcessor().charge(token, USD)
    assert (result.status, result.failure_code) == (status, code)


def test_the_token_holds_no_card_digits():
    assert not any(char.isdigit() for char in tokenize("4000000000009995"))


@pytest.mark.parametrize("token", ["", "refund", "decline", "fail:"])
def test_unknown_tokens_are_refused(token):
    with pytest.raises(ValueError, match="not a processor token"):
        Outcome.from_token(token)
