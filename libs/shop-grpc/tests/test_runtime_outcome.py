"""How a served call ended, as its caller receives it (shop_grpc.outcome): what the handler
answered, CANCELLED when it was cancelled, DEADLINE_EXCEEDED once the deadline passed."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import grpc
import pytest

from shop_grpc.deadlines import HOP_MARGIN_SECONDS
from shop_grpc.outcome import Outcome, expired, received


@dataclass
class Context:
    """What Outcome reads of a grpc.aio.ServicerContext."""

    answered: object = None
    left: float | None = 5.0

    def code(self) -> object:
        return self.answered

    def time_remaining(self) -> float | None:
        return self.left


def ended(context: Context, error: BaseException | None = None) -> grpc.StatusCode:
    outcome = Outcome(context)
    if error is None:
        with outcome:
            pass
    else:
        # Outcome never swallows what the handler raised.
        with pytest.raises(type(error)), outcome:
            raise error
    return outcome.code


@pytest.mark.parametrize(
    ("answered", "error", "code"),
    [
        (None, None, grpc.StatusCode.OK),
        (grpc.StatusCode.NOT_FOUND, None, grpc.StatusCode.NOT_FOUND),
        (5, None, grpc.StatusCode.NOT_FOUND),  # set_code with a number
        (
            grpc.StatusCode.PERMISSION_DENIED,
            grpc.aio.AbortError(),
            grpc.StatusCode.PERMISSION_DENIED,
        ),
        (None, grpc.aio.AbortError(), grpc.StatusCode.UNKNOWN),
        (None, asyncio.CancelledError(), grpc.StatusCode.CANCELLED),
        (None, KeyError("bug"), grpc.StatusCode.UNKNOWN),
    ],
    ids=["ok", "set-code", "set-code-number", "aborted", "aborted-no-code", "cancelled", "bug"],
)
def test_before_the_deadline_the_call_ends_as_the_handler_left_it(answered, error, code):
    assert ended(Context(answered), error) is code


@pytest.mark.parametrize(
    "error", [None, asyncio.CancelledError(), KeyError("bug")], ids=["ok", "cancelled", "bug"]
)
def test_once_the_deadline_has_passed_every_call_ends_deadline_exceeded(error):
    assert ended(Context(left=0.0), error) is grpc.StatusCode.DEADLINE_EXCEEDED
    assert ended(Context(left=-1.0), error) is grpc.StatusCode.DEADLINE_EXCEEDED


def test_a_deadline_within_the_hop_margin_counts_as_passed_and_none_never_passes():
    assert expired(Context(left=HOP_MARGIN_SECONDS))
    assert not expired(Context(left=HOP_MARGIN_SECONDS + 0.5))
    assert not expired(Context(left=None))
    assert received(Context(left=None), grpc.StatusCode.OK) is grpc.StatusCode.OK
