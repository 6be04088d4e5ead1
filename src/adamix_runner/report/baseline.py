"""A table's declared comparisons: per cell, (row − baseline row) with a 95 % interval over seeds.

The interval is a paired t when the seeds pair the runs (both cells have values for the same seeds, and each
seed's two runs read the same data: equal `task`, `data` and `fewshot` config), Welch's t otherwise. Each cell
says which, and marks an interval that excludes 0.
"""

from __future__ import annotations

from dataclasses import dataclass

from adamix_runner.report import declaration
from adamix_runner.report.aggregate import SeedValues, scale
from adamix_runner.report.grid import Row, Table
from adamix_runner.report.render import Sheet
from adamix_runner.report.runs import RunRecord
from adamix_runner.report.stats import LEVEL, Interval, paired, welch

DATA_KEYS = ("task", "data", "fewshot")  # the config that decides which examples a run trains and is scored on
EXCLUDES_ZERO = "‡"


@dataclass
class Comparison:
    row: Row
    baseline: Row
    cells: dict[str, Interval | str]  # column id (and "average") -> the interval, or why there is none


def _data(run: RunRecord) -> tuple:
    return tuple(repr(run.get(key)) for key in DATA_KEYS)


def _same_data(row: Row, baseline: Row, column: str, seeds: set[int]) -> bool:
    def by_seed(runs: list[RunRecord]) -> dict[int, RunRecord]:
        return {run.get("seed"): run for run in runs}

    ours, theirs = by_seed(row.runs.get(column, [])), by_seed(baseline.runs.get(column, []))
    return all(seed in ours and seed in theirs and _data(ours[seed]) == _data(theirs[seed]) for seed in seeds)


def interval(cell: SeedValues, base: SeedValues, pairable: bool) -> Interval | str:
    """The cell's interval against the baseline cell: paired when `pairable` and both have the same seeds."""
    if len(cell.values) < 2 or len(base.values) < 2:
        return "n < 2"
    seeds = sorted(cell.values)
    if pairable and seeds == sorted(base.values):
        return paired([cell.values[s] for s in seeds], [base.values[s] for s in seeds])
    return welch(list(cell.values.values()), list(base.values.values()))


def compare(table: Table, pairs: list[tuple[str, str]], average_columns: list[str] | None = None) -> list[Comparison]:
    """Every declared (row, baseline) pair of a built table, per column and for the average."""
    rows = {row.id: row for row in table.rows}
    found = []
    for row_id, base_id in pairs:
        row, base = rows[row_id], rows[base_id]
        cells: dict[str, Interval | str] = {}
        for column in table.columns:
            same = _same_data(row, base, column.id, set(row.cells[column.id].values))
            cells[column.id] = interval(row.cells[column.id], base.cells[column.id], same)
        if row.average is not None and base.average is not None:
            averaged = average_columns or [c.id for c in table.columns]
            same = all(_same_data(row, base, c, set(row.average.values)) for c in averaged)
            cells["average"] = interval(row.average, base.average, same)
        found.append(Comparison(row, base, cells))
    return found


def digits(metric: str | None) -> int:
    """Two decimals for metrics in % (accuracy points), three for the others (losses, BLEU fractions ...)."""
    return 2 if metric is None or scale(metric) == 100.0 else 3


def format_cell(result: Interval | str, decimals: int) -> str:
    if isinstance(result, str):
        return result
    return f"{result.format(decimals)} {result.test}" + (EXCLUDES_ZERO if result.excludes_zero else "")


def table_pairs(decl: dict) -> list[tuple[str, str]]:
    return declaration.baseline_pairs(decl, declaration.row_ids(decl))


def sheet(table: Table, comparisons: list[Comparison]) -> Sheet:
    """One line per declared pair: the difference of each cell (and of the average) from the baseline."""
    with_average = table.average_label is not None
    header = ["Comparison", *(c.label for c in table.columns), *([table.average_label] if with_average else [])]
    decimals = {c.id: digits(c.metric) for c in table.columns} | {"average": 2}
    lines = []
    for comparison in comparisons:
        keys = [c.id for c in table.columns] + (["average"] if with_average else [])
        cells = [format_cell(comparison.cells.get(key, "–"), decimals[key]) for key in keys]
        lines.append([f"{comparison.row.label} − {comparison.baseline.label}", *cells])
    return Sheet(f"{table.id}: differences from the baseline ({LEVEL:.0%} CI over seeds)", header, lines, notes())


def records(table: Table, comparisons: list[Comparison]) -> list[dict]:
    """One record per (pair, cell): the differences CSV."""
    out = []
    for comparison in comparisons:
        for column, result in comparison.cells.items():
            found = not isinstance(result, str)
            out.append(
                {
                    "table": table.id,
                    "row": comparison.row.id,
                    "baseline": comparison.baseline.id,
                    "column": column,
                    "difference": f"{result.difference:.6g}" if found else "",
                    "low": f"{result.low:.6g}" if found else "",
                    "high": f"{result.high:.6g}" if found else "",
                    "df": f"{result.df:.6g}" if found else "",
                    "test": result.test if found else result,
                    "excludes_zero": result.excludes_zero if found else "",
                }
            )
    return out


def notes() -> list[str]:
    return [
        f"each cell: ours − baseline, mean difference [{LEVEL:.0%} confidence interval over seeds]; paired: a "
        "paired t (both cells have the same seeds, and each seed's two runs read the same data); Welch: Welch's t "
        "(unequal variances); n < 2: fewer than two seeds on a side",
        f"{EXCLUDES_ZERO}: the interval excludes 0, a difference larger than the seeds' noise (one comparison at a "
        "time: no correction for the number of comparisons)",
    ]
