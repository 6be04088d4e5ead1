"""Every interval the docs quote is checked: each line of their "How sure is each difference" tables is recomputed
with scipy from the summary statistics on the line (independently of report/stats.py), its verdict follows from
the interval, and every interval quoted in the prose (and the README's summary) is one of those lines."""

from __future__ import annotations

import re
import statistics
from pathlib import Path

import pytest
import scipy.stats

ROOT = Path(__file__).resolve().parents[2]
DOCS = {"docs/TABLE_DEMO.md": 12, "docs/WHEN_ADAMIX_PAYS_OFF.md": 19}  # page -> lines it must hold
NUMBER = r"([+-]?\d+\.\d+)"
CELL = NUMBER + r" ± " + NUMBER + r" \((\d+)\)"
LINE = re.compile(
    r"^\| (?P<name>[^|]+) \| " + CELL + r" \| " + CELL + r" \| " + rf"{NUMBER} \[{NUMBER}, {NUMBER}\]"
    r" \| (?P<verdict>established|within noise: would need ~(?P<seeds>\d+) seeds) \|$"
)
QUOTED = re.compile(r"([+−-]\d+\.\d+) \[([+−-]\d+\.\d+), ([+−-]\d+\.\d+)\]")


def sample(mean: float, sd: float, n: int) -> list[float]:
    """n values with exactly this mean and sample std."""
    base = list(range(n))
    centre, spread = statistics.fmean(base), statistics.stdev(base)
    return [mean + sd * (x - centre) / spread for x in base]


def scipy_welch(mean, sd, n, base_mean, base_sd, base_n) -> tuple[float, float]:
    result = scipy.stats.ttest_ind(sample(mean, sd, n), sample(base_mean, base_sd, base_n), equal_var=False)
    found = result.confidence_interval(0.95)
    return found.low, found.high


def lines(page: str) -> list[re.Match]:
    return [m for m in map(LINE.match, (ROOT / page).read_text(encoding="utf-8").splitlines()) if m]


CHECKED = [(page, match) for page in DOCS for match in lines(page)]


def test_each_page_holds_its_interval_table():
    for page, count in DOCS.items():
        assert len(lines(page)) >= count, f"{page}: the interval table lost lines"


@pytest.mark.parametrize(("page", "line"), CHECKED, ids=[f"{p}:{m['name']}" for p, m in CHECKED])
def test_each_quoted_interval_is_scipys_welch_interval(page, line):
    mean, sd, n, base_mean, base_sd, base_n, diff, low, high = (line.group(i) for i in range(2, 11))
    stats = (float(mean), float(sd), int(n), float(base_mean), float(base_sd), int(base_n))
    decimals = len(diff.split(".")[1])
    tolerance = 0.5 * 10**-decimals + 1e-9
    want_low, want_high = scipy_welch(*stats)
    assert float(diff) == pytest.approx(stats[0] - stats[3], abs=tolerance)
    assert float(low) == pytest.approx(want_low, abs=tolerance)
    assert float(high) == pytest.approx(want_high, abs=tolerance)
    assert (line["verdict"] == "established") == excludes_zero((want_low, want_high))
    if line["seeds"]:
        diff_stats = (stats[0] - stats[3], stats[1], stats[4])
        seeds = next(
            k
            for k in range(2, 101)
            if excludes_zero(scipy_welch(diff_stats[0], diff_stats[1], k, 0.0, diff_stats[2], k))
        )
        assert int(line["seeds"]) == seeds


def excludes_zero(interval: tuple[float, float]) -> bool:
    return interval[0] > 0 or interval[1] < 0


def test_every_interval_in_the_prose_is_a_checked_one():
    checked = {tuple(float(x) for x in match.group(8, 9, 10)) for _, match in CHECKED}
    for page in [*DOCS, "README.md"]:
        text = (ROOT / page).read_text(encoding="utf-8")
        for quoted in QUOTED.finditer(text):
            numbers = tuple(float(x.replace("−", "-")) for x in quoted.groups())
            assert numbers in checked, f"{page}: {quoted.group(0)} is not an interval of the checked tables"
