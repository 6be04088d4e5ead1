"""docs/FEWSHOT_STUDY.md: every number it quotes follows from its own per-run table, recomputed here with scipy
(cell means and sample sds, the paired differences over the 9 task-split pairs and over each task's 3 splits),
so that a wrong number in the prose or the tables fails."""

from __future__ import annotations

import re
import statistics
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

DOC = Path(__file__).parents[2] / "docs" / "FEWSHOT_STUDY.md"
TASKS = ["SST-2", "Subj", "MPQA"]
METHODS = {"head-only": 0, "LiST adapter": 1, "AdaMix": 2}
REPORT_ROWS = {
    "Head-only (label-word rows)": "head-only",
    "LiST Adapter": "LiST adapter",
    "AdaMix (4 LiST adapters)": "AdaMix",
}
PAIRS = [("AdaMix", "LiST adapter"), ("AdaMix", "head-only"), ("LiST adapter", "head-only")]


def _text() -> str:
    return DOC.read_text()


def _per_run() -> dict[tuple[str, str], list[float]]:
    """(task, method) -> accuracies of splits 1..3, from the per-run table."""
    runs: dict[tuple[str, str], list[float]] = {}
    for task, split, *accs in re.findall(
        r"^\s*\| (SST-2|Subj|MPQA) \| (\d) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|$", _text(), re.M
    ):
        for method, column in METHODS.items():
            runs.setdefault((task, method), []).append(float(accs[column]))
        assert len(runs[(task, "AdaMix")]) == int(split)
    assert len(runs) == 9 and all(len(v) == 3 for v in runs.values())
    return runs


def _interval(differences: list[float]) -> tuple[float, float, float]:
    d = np.array(differences)
    ci = stats.ttest_1samp(d, 0.0).confidence_interval(0.95)
    return float(d.mean()), float(ci.low), float(ci.high)


def _numbers(cell: str) -> list[float]:
    return [float(x.replace("−", "-")) for x in re.findall(r"[−+-]?\d+\.\d+", cell)]


def test_the_report_table_is_the_mean_and_sample_sd_of_the_per_run_table():
    runs = _per_run()
    lines = [
        line for line in _text().splitlines() if line.startswith("| ") and line.split(" | ")[0][2:] in REPORT_ROWS
    ]
    assert len(lines) == 3
    for line in lines:
        cells = line.strip("|").split(" | ")
        method = REPORT_ROWS[cells[0].strip()]
        for task, cell in zip(TASKS, (cells[2], cells[4], cells[6]), strict=True):
            mean, sd = _numbers(cell)[:2]
            values = [100 * v for v in runs[(task, method)]]
            assert mean == pytest.approx(statistics.mean(values), abs=0.006)
            assert sd == pytest.approx(statistics.stdev(values), abs=0.006)


@pytest.mark.parametrize(("ours", "base"), PAIRS)
def test_the_per_task_differences_are_paired_t_intervals_over_the_three_splits(ours, base):
    runs = _per_run()
    (line,) = [line for line in _text().splitlines() if line.startswith(f"| {ours} − {base} | ") and "[" in line]
    cells = line.strip("|").split(" | ")[1:]
    assert len(cells) == 4
    for task, cell in zip(TASKS, cells[:3], strict=True):
        mean, low, high = _interval(
            [100 * (a - b) for a, b in zip(runs[(task, ours)], runs[(task, base)], strict=True)]
        )
        assert _numbers(cell) == pytest.approx([mean, low, high], abs=0.006)
    average = [100 * statistics.mean(runs[(t, ours)][s] - runs[(t, base)][s] for t in TASKS) for s in range(3)]
    assert _numbers(cells[3]) == pytest.approx(list(_interval(average)), abs=0.006)


@pytest.mark.parametrize(("ours", "base"), PAIRS)
def test_the_pooled_differences_over_nine_pairs_and_the_short_answer(ours, base):
    runs = _per_run()
    differences = [a - b for t in TASKS for a, b in zip(runs[(t, ours)], runs[(t, base)], strict=True)]
    mean, low, high = _interval(differences)
    (line,) = [
        line
        for line in _text().splitlines()
        if line.strip().startswith(f"| {ours} − {base} | ") and "[" in line and line.count("|") == 5
    ]
    quoted_mean, quoted_sd, quoted_low, quoted_high = _numbers(line)
    assert [quoted_mean, quoted_low, quoted_high] == pytest.approx([mean, low, high], abs=0.0006)
    assert quoted_sd == pytest.approx(statistics.stdev(differences), abs=0.0006)
    assert low < 0 < high  # the doc's verdict: within noise
    short = f"{100 * mean:+.1f}".replace(
        "-", "−"
    ) + f" points, 95 % interval [{100 * low:.1f}, {100 * high:+.1f}]".replace("-", "−")
    if (ours, base) == ("AdaMix", "LiST adapter"):
        assert short in _text().replace("\n  ", " ")
