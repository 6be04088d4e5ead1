"""Is a difference between two cells more than seed noise? A 95 % confidence interval of (row − baseline) over seeds.

Welch's t when the two cells' runs are unpaired (different seeds, or different data); a paired t when the seeds
pair the runs (the same seeds on both sides, the same data), which removes what a seed shares between the two
runs. Pure functions over numbers: the report (report/baseline.py) decides which applies, the docs' check
(tests/unit/test_docs_intervals.py) feeds the recorded summary statistics.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats as scipy_stats

LEVEL = 0.95
WELCH = "Welch"
PAIRED = "paired"


@dataclass(frozen=True)
class Interval:
    """(row − baseline) with its confidence interval; `test` says which t it came from."""

    difference: float
    low: float
    high: float
    df: float
    test: str  # WELCH or PAIRED
    level: float = LEVEL

    @property
    def excludes_zero(self) -> bool:
        """The interval lies wholly on one side of 0: the difference is more than the seeds' noise."""
        return self.low > 0 or self.high < 0

    def format(self, digits: int = 2) -> str:
        return f"{self.difference:+.{digits}f} [{self.low:+.{digits}f}, {self.high:+.{digits}f}]"


def _quantile(df: float, level: float) -> float:
    return float(scipy_stats.t.ppf(0.5 + level / 2, df))


def welch_from_stats(
    mean: float, sd: float, n: int, base_mean: float, base_sd: float, base_n: int, level: float = LEVEL
) -> Interval:
    """Welch's interval from each side's mean, sample std and n (what a report's `mean ± std (n)` records)."""
    if n < 2 or base_n < 2:
        raise ValueError(f"Welch's interval needs at least 2 values a side, got n = {n} and {base_n}.")
    var, base_var = sd * sd / n, base_sd * base_sd / base_n
    diff = mean - base_mean
    se = math.sqrt(var + base_var)
    if se == 0:
        return Interval(diff, diff, diff, math.inf, WELCH, level)
    df = (var + base_var) ** 2 / (var * var / (n - 1) + base_var * base_var / (base_n - 1))
    half = _quantile(df, level) * se
    return Interval(diff, diff - half, diff + half, df, WELCH, level)


def welch(values: Sequence[float], baseline: Sequence[float], level: float = LEVEL) -> Interval:
    """Welch's interval of mean(values) − mean(baseline) (unequal variances)."""
    return welch_from_stats(*_summary(values), *_summary(baseline), level)


def paired(values: Sequence[float], baseline: Sequence[float], level: float = LEVEL) -> Interval:
    """The paired-t interval of the mean of values[i] − baseline[i] (the i-th runs share a seed and the data)."""
    if len(values) != len(baseline):
        raise ValueError(
            f"a paired interval needs as many values as baseline values ({len(values)} vs {len(baseline)})."
        )
    if len(values) < 2:
        raise ValueError(f"a paired interval needs at least 2 pairs, got {len(values)}.")
    diffs = [a - b for a, b in zip(values, baseline, strict=True)]
    mean, sd, n = _summary(diffs)
    half = _quantile(n - 1, level) * sd / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n - 1, PAIRED, level)


def seeds_to_resolve(
    difference: float, sd: float, base_sd: float, level: float = LEVEL, most: int = 100
) -> int | None:
    """The fewest seeds per side at which Welch's interval of a difference this size, with these spreads, would
    exclude 0; None when `most` would not do (or the difference is 0). With the true difference equal to the
    observed one, about half of such reruns would exclude 0: a lower bound on the seeds needed, not a power
    analysis."""
    if difference == 0:
        return None
    for n in range(2, most + 1):
        if welch_from_stats(difference, sd, n, 0.0, base_sd, n, level).excludes_zero:
            return n
    return None


def _summary(values: Sequence[float]) -> tuple[float, float, int]:
    if len(values) < 2:
        raise ValueError(f"an interval needs at least 2 values a side, got {len(values)}.")
    return statistics.fmean(values), statistics.stdev(values), len(values)
