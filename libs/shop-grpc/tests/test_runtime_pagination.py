"""pagination: sealed, typed page tokens, and pages that say whether more follow."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from google.protobuf.wrappers_pb2 import StringValue

from shop_grpc.errors import InvalidArgument
from shop_grpc.pagination import MAX_PAGE_BYTES, Page, PageTokens, page_of, page_size


def test_page_tokens_round_trip_with_their_types():
    tokens = PageTokens(bytes(32))
    at = datetime(2026, 1, 1, tzinfo=UTC)
    token = tokens.issue("users", [at, "u-1"])
    assert tokens.read_time_and_id("users", token) == (at, "u-1")
    assert tokens.read_id("products", tokens.issue("products", ["widget"])) == "widget"
    assert tokens.read_time_and_id("users", "") is None
    assert "u-1" not in base64.urlsafe_b64decode(token + "==").decode(errors="replace")


def _sealed(tokens: PageTokens, scope: str, plain: bytes) -> str:
    """A token this key really sealed, holding whatever `plain` says (a server bug's token)."""
    nonce = bytes(12)
    raw = nonce + tokens._aead.encrypt(nonce, plain, scope.encode())
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _forged(scope_key: list[object]) -> str:
    """A token as the first format made them: readable JSON, no seal (the issue's example)."""
    raw = json.dumps({"s": "orders/u", "k": scope_key}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_any_token_this_list_did_not_issue_is_invalid_argument_on_page_token():
    tokens = PageTokens(bytes(32))
    good = tokens.issue("orders/u", [datetime(2026, 1, 1, tzinfo=UTC), "o-1"])
    flipped = good[:-2] + ("A" if good[-2] != "A" else "B") + good[-1]
    bad = [
        _forged(["x", "y"]),
        _forged([1, 2, 3]),
        "not-a-token!",
        "e30",
        flipped,
        good[:10],
        tokens.issue("orders/v", [datetime(2026, 1, 1, tzinfo=UTC), "o-1"]),  # other user
        PageTokens(bytes(range(32))).issue("orders/u", [datetime.now(UTC), "o"]),  # other key
        _sealed(tokens, "orders/u", b'["x","y"]'),  # sealed, but not a time
        _sealed(tokens, "orders/u", b'["2026-01-01T00:00:00","o"]'),  # naive time
        _sealed(tokens, "orders/u", b'["2026-01-01T00:00:00+00:00",5]'),
        _sealed(tokens, "orders/u", b'{"k":1}'),
        _sealed(tokens, "orders/u", b"\xff\xfe"),
    ]
    # The same bytes spelled otherwise: the unused low bits of the last base64 character.
    short = tokens.issue("orders/u", [datetime(2026, 1, 1, tzinfo=UTC), "o"])
    while len(short) % 4 != 2:
        short = tokens.issue("orders/u", [datetime(2026, 1, 1, tzinfo=UTC), "o" + short[:3]])
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    low_bits = alphabet.index(short[-1]) & 0b1111
    bad.append(short[:-1] + alphabet[alphabet.index(short[-1]) - low_bits + (low_bits ^ 1)])
    assert base64.urlsafe_b64decode(bad[-1] + "==") == base64.urlsafe_b64decode(short + "==")
    for token in bad:
        with pytest.raises(InvalidArgument) as caught:
            tokens.read_time_and_id("orders/u", token)
        assert [v.field for v in caught.value.violations] == ["page_token"], token
    with pytest.raises(InvalidArgument):
        tokens.read_id("products", _sealed(tokens, "products", b"[true]"))


@pytest.mark.parametrize(
    ("requested", "used"), [(0, 50), (-3, 50), (20, 20), (500, 500), (501, 500)]
)
def test_page_size_zero_means_the_default_and_no_page_passes_the_maximum(requested, used):
    assert page_size(requested) == used


async def test_a_page_fetches_one_item_more_than_it_holds_to_tell_whether_more_follow():
    items = list(range(7))
    limits: list[int] = []

    async def fetch(limit: int) -> list[int]:
        limits.append(limit)
        return items[:limit]

    more = await page_of(fetch, 3, lambda item: f"after-{item}")
    last = await page_of(fetch, 7, lambda item: f"after-{item}")

    assert (more.items, more.next_page_token) == ([0, 1, 2], "after-2")
    assert (last.items, last.next_page_token) == (items, "")
    assert limits == [4, 8]


def big(item: int) -> StringValue:
    return StringValue(value=str(item) * 1_000_000)


def test_a_page_keeps_what_fits_in_its_byte_budget_and_resumes_at_the_first_left_out():
    page = Page(list(range(5)), "after-4", lambda item: f"after-{item}")

    messages, token = page.fitted(big)

    assert len(messages) == MAX_PAGE_BYTES // 1_000_000  # 3 of about 1 MB each
    assert token == f"after-{len(messages) - 1}"
    assert Page([0, 1], "after-1", str).fitted(big)[1] == "after-1"  # all fit: as fetched
    # An item over the budget on its own still makes a page, so a list always moves on.
    alone = Page([7], "", str).fitted(lambda item: StringValue(value="x" * (MAX_PAGE_BYTES + 1)))
    assert len(alone[0]) == 1
