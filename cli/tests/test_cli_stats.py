import math

import pytest

from shop_cli.stats import percentile, throughput


def test_percentile_interpolates_between_ranks():
    values = [1.0, 2.0, 3.0, 4.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 4.0
    assert percentile(values, 50) == pytest.approx(2.5)
    assert percentile(values, 95) == pytest.approx(3.85)


def test_percentile_ignores_input_order():
    assert percentile([30.0, 10.0, 20.0], 50) == 20.0


def test_percentile_of_one_value_is_that_value():
    assert percentile([7.0], 99) == 7.0


def test_percentile_of_nothing_is_nan():
    assert math.isnan(percentile([], 50))


def test_p99_of_a_hundred_latencies_lies_near_the_top():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile(values, 50) == pytest.approx(50.5)


@pytest.mark.parametrize("q", [-1, 101])
def test_percentile_outside_range_is_an_error(q):
    with pytest.raises(ValueError, match="outside"):
        percentile([1.0], q)


def test_throughput_is_count_per_second_and_zero_without_time():
    assert throughput(300, 30.0) == 10.0
    assert throughput(5, 0.0) == 0.0
