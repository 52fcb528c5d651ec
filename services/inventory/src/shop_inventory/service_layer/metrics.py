"""What happens to stock held for orders.

    shop_inventory_reservations_total   counter   state

Reservations that entered ``state``: ``PENDING`` (stock held for an order), ``COMMITTED`` (sold),
``RELEASED`` (given back by the order's undo) or ``EXPIRED`` (held past its time to live and
given back by the sweep, or by the commit or release that found it overdue). Counted once the
change is committed; a repeated call that changes nothing is not counted.
"""

from __future__ import annotations

from prometheus_client import Counter

from shop_inventory.domain.model import ReservationState

RESERVATIONS = Counter(
    "shop_inventory_reservations",
    "Reservations of stock that entered a state: held, sold, released or expired.",
    ("state",),
)
# Shown at 0 before the first change, so rates and alerts see every series from the start.
for _state in ReservationState:
    RESERVATIONS.labels(_state.value)


def reservations_entered(state: ReservationState, count: int = 1) -> None:
    RESERVATIONS.labels(state.value).inc(count)
