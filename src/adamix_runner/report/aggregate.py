"""Mean ± std (n) over seeds, a cell's status when it has no value, and the paper's average convention."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

# The runner's GLUE metrics are fractions; the paper prints them in %. Its NLG metrics already use the paper's scales.
PERCENT_METRICS = ("accuracy", "f1", "matthews", "pearson", "spearman")
STATUS_ORDER = (
    "failed",
    "interrupted",
    "not evaluated",
    "no metric",
    "planned",
)  # what an empty cell says, most telling first


def scale(metric: str) -> float:
    return 100.0 if metric.split("/")[-1] in PERCENT_METRICS else 1.0


@dataclass(frozen=True)
class Stats:
    mean: float
    std: float | None  # sample standard deviation (n - 1); None for one value
    n: int

    def format(self, digits: int = 2) -> str:
        spread = "" if self.std is None else f" ± {self.std:.{digits}f}"
        return f"{self.mean:.{digits}f}{spread} ({self.n})"


def summarize(values: Sequence[float]) -> Stats | None:
    if not values:
        return None
    std = statistics.stdev(values) if len(values) > 1 else None
    return Stats(statistics.fmean(values), std, len(values))


@dataclass
class SeedValues:
    """A table cell's values by seed, and what the seeds without a value are (failed, missing, ...)."""

    values: dict[int, float] = field(default_factory=dict)  # seed -> value
    statuses: dict[int, str] = field(default_factory=dict)  # seed -> status, for seeds without a value
    note: str | None = None  # "not run": the row is reported with the paper's number only

    @property
    def stats(self) -> Stats | None:
        return summarize([self.values[seed] for seed in sorted(self.values)])

    def status(self) -> str:
        """The word shown instead of a number (or after it, for the seeds that have none)."""
        if self.note:
            return self.note
        found = set(self.statuses.values())
        return next((word for word in STATUS_ORDER if word in found), "missing")

    def format(self, digits: int = 2) -> str:
        stats = self.stats
        if stats is None:
            return self.status()
        failed = sum(1 for word in self.statuses.values() if word == "failed")
        return stats.format(digits) + (f" [{failed} failed]" if failed else "")


def average(cells: Sequence[SeedValues]) -> SeedValues:
    """The mean over columns, per seed; a seed counts only where every column has its value (the paper averages
    one number per task). With a column wholly empty, the average is empty too ("incomplete")."""
    if not cells:
        return SeedValues(note="incomplete")
    seeds = set.intersection(*(set(cell.values) for cell in cells))
    if not seeds:
        return SeedValues(note="incomplete")
    return SeedValues(values={seed: math.fsum(cell.values[seed] for cell in cells) / len(cells) for seed in seeds})


def difference(ours: Stats | None, paper: float | None) -> float | None:
    return None if ours is None or paper is None else ours.mean - paper
