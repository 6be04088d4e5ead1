"""The intervals at their edges, which mutation testing (`make mutate`, docs/TESTING.md) found unpinned: the first n
`seeds_to_resolve` returns is 2, the last is `most` (100 unless told), a difference of 1 is not 0, the level is the
one asked (there and in Welch's interval), two pairs are enough for a paired interval, seeds without spread give a
point interval, and one value on either side is refused.
The thresholds come from scipy: with sd 1 on both sides and n seeds a side, Welch's interval of a difference d
excludes 0 when d > t(0.975, 2(n - 1)) x sqrt(2 / n)."""

from __future__ import annotations

import math

import pytest
import scipy.stats

from adamix_runner.report.stats import paired, seeds_to_resolve, welch, welch_from_stats


def threshold(n: int, level: float = 0.95) -> float:
    return float(scipy.stats.t.ppf(0.5 + level / 2, 2 * (n - 1))) * math.sqrt(2 / n)


def between(n: int, level: float = 0.95) -> float:
    """A difference that n seeds a side resolve and n - 1 do not."""
    return (threshold(n - 1, level) + threshold(n, level)) / 2


@pytest.mark.parametrize("n", [2, 3, 10, 100])
def test_the_fewest_seeds_from_two_to_a_hundred(n):
    difference = 2 * threshold(2) if n == 2 else between(n)
    assert seeds_to_resolve(difference, 1.0, 1.0) == n
    assert seeds_to_resolve(-difference, 1.0, 1.0) == n


def test_more_than_most_seeds_is_none_and_most_is_the_last_tried():
    difference = between(101)
    assert seeds_to_resolve(difference, 1.0, 1.0) is None  # 100 unless told
    assert seeds_to_resolve(difference, 1.0, 1.0, most=101) == 101
    assert seeds_to_resolve(between(10), 1.0, 1.0, most=10) == 10
    assert seeds_to_resolve(between(10), 1.0, 1.0, most=9) is None


def test_a_difference_of_one_is_resolved_and_the_level_is_the_one_asked():
    assert seeds_to_resolve(1.0, 1.0, 1.0) == next(n for n in range(2, 101) if threshold(n) < 1.0)
    at_80 = seeds_to_resolve(between(20, 0.80), 1.0, 1.0, level=0.80)
    assert at_80 == 20 and seeds_to_resolve(between(20, 0.80), 1.0, 1.0) > 20


def test_welch_at_another_level_is_scipys_and_two_pairs_are_enough_for_a_paired_interval():
    ours, theirs = [70.1, 68.9, 69.9], [66.2, 66.5, 66.0]
    low, high = scipy.stats.ttest_ind(ours, theirs, equal_var=False).confidence_interval(0.80)
    assert (welch(ours, theirs, level=0.80).low, welch(ours, theirs, level=0.80).high) == pytest.approx((low, high))
    two = paired([70.1, 68.9], [66.2, 66.5])
    low, high = scipy.stats.ttest_rel([70.1, 68.9], [66.2, 66.5]).confidence_interval(0.95)
    assert (two.low, two.high, two.df) == pytest.approx((low, high, 1))
    assert paired([70.1, 68.9], [66.2, 66.5], level=0.80).level == 0.80 == welch(ours, theirs, level=0.80).level
    with pytest.raises(ValueError, match=r"^a paired interval needs at least 2 pairs, got 1\.$"):
        paired([70.1], [66.2])


def test_seeds_without_spread_give_a_point_interval_and_one_value_a_side_is_refused():
    point = welch([70.0, 70.0, 70.0], [66.0, 66.0], level=0.80)
    assert (point.difference, point.low, point.high, point.df, point.test) == (4.0, 4.0, 4.0, math.inf, "Welch")
    assert point.excludes_zero and point.level == 0.80
    message = r"^Welch's interval needs at least 2 values a side, got n = 1 and 3\.$"
    with pytest.raises(ValueError, match=message):
        welch_from_stats(70.0, 1.0, 1, 66.0, 1.0, 3)
