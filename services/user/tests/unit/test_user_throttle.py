"""The failure throttle: a few failures are free, then each waits twice as long, up to a cap;
a success or the end of the window forgets them."""

from __future__ import annotations

from shop_user.domain.throttle import FailureThrottle, Limit


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def throttle(clock: Clock, **limit: float) -> FailureThrottle:
    values = {"free_failures": 3, "window_seconds": 600.0, "max_wait_seconds": 30.0, **limit}
    return FailureThrottle(Limit(**values), clock)  # type: ignore[arg-type]


def test_free_failures_cost_no_wait_then_waits_double_up_to_the_cap():
    clock = Clock()
    limiter = throttle(clock)
    waits = []
    for _ in range(9):
        limiter.failed("alice")
        waits.append(limiter.wait_seconds("alice"))

    assert waits == [0, 0, 0, 1, 2, 4, 8, 16, 30]


def test_the_wait_runs_out_with_time():
    clock = Clock()
    limiter = throttle(clock, free_failures=0)
    limiter.failed("alice")
    limiter.failed("alice")

    clock.now += 1.5
    assert limiter.wait_seconds("alice") == 0.5
    clock.now += 0.5
    assert limiter.wait_seconds("alice") == 0


def test_keys_are_counted_apart_and_a_success_forgets_its_key():
    clock = Clock()
    limiter = throttle(clock, free_failures=0)
    limiter.failed("alice")
    limiter.failed("bob")

    limiter.succeeded("alice")

    assert limiter.wait_seconds("alice") == 0
    assert limiter.wait_seconds("bob") == 1


def test_failures_older_than_the_window_are_forgotten():
    clock = Clock()
    limiter = throttle(clock, free_failures=2, window_seconds=60)
    limiter.failed("alice")
    limiter.failed("alice")
    clock.now += 61
    limiter.failed("alice")  # the first of a new run: free again

    assert limiter.wait_seconds("alice") == 0


def test_memory_stays_bounded_by_forgetting_the_oldest_key():
    clock = Clock()
    limiter = FailureThrottle(Limit(0, 600), clock, max_keys=2)
    for key in ("a", "b", "c"):
        limiter.failed(key)

    assert limiter.wait_seconds("a") == 0
    assert limiter.wait_seconds("c") == 1
