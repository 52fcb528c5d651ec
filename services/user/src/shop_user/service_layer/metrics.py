"""How sign-ins end, so an online guessing attack shows on a dashboard and can page someone.

    shop_user_sign_ins_total   counter   outcome

``outcome``: ``SIGNED_IN`` (a token was issued), ``REFUSED`` (wrong login or password) or
``THROTTLED`` (refused unchecked: the login name or the client address must wait). Nothing
about who: no login name, user id or address is a label, so a series says how many, never
whose.
"""

from __future__ import annotations

from prometheus_client import Counter

SIGNED_IN = "SIGNED_IN"
REFUSED = "REFUSED"
THROTTLED = "THROTTLED"

SIGN_INS = Counter("shop_user_sign_ins", "Sign-in tries, by how they ended.", ("outcome",))
# Shown at 0 before the first try, so rates and alerts see every series from the start.
for _outcome in (SIGNED_IN, REFUSED, THROTTLED):
    SIGN_INS.labels(_outcome)


def sign_in(outcome: str) -> None:
    SIGN_INS.labels(outcome).inc()
