"""PLAN's total says when it cannot estimate runs (tasks without a size in tables/sizes.py) instead of 0.0 h."""

from __future__ import annotations

from pathlib import Path

from adamix_runner.tables import declaration
from adamix_runner.tables.cli import render
from adamix_runner.tables.cost import Weights
from adamix_runner.tables.lengths import RowTokens
from adamix_runner.tables.plan import CellPlan, TablePlan
from adamix_runner.tables.throughput import Rate

TOKENS = RowTokens(100.0, 100.0, "stated", "test")
WEIGHTS = Weights(frozen=0, trained=100, layers=0, hidden=0, how="model")  # 600 FLOPs per token
RATE = Rate(6e5, "test")  # 3600 samples x 100 tokens x 600 FLOPs / 6e5 FLOP/s = 0.1 h a run


def plan_of(sizes: list[int | None]) -> TablePlan:
    decl = declaration.load("table6")
    cells = declaration.cells(decl, "paper")[: len(sizes)]
    plan = TablePlan(decl, "paper", [0, 1], "gpu", "outputs")
    for cell, samples in zip(cells, sizes, strict=True):
        status = {0: "absent", 1: "absent"}
        plan.cells.append(CellPlan(cell, Path("f") / cell.row, status, samples, 1, TOKENS, WEIGHTS, RATE))
    return plan


def total(plan: TablePlan) -> str:
    return next(line for line in render(plan).splitlines() if " runs: " in line)


def test_runs_without_a_size_are_named_not_counted_as_zero_hours():
    unknown = total(plan_of([None, None]))
    assert unknown.endswith(
        "4 to run; no estimate for the 4 runs marked ? (their tasks have no size in tables/sizes.py)"
    )
    mixed = total(plan_of([3600, None]))  # 2 runs x 0.1 h
    assert mixed.endswith(
        "estimate 0.2 GPU h for the rest, not counting the 2 runs marked ? (their tasks have no "
        "size in tables/sizes.py)"
    )
    assert total(plan_of([3600, 3600])).endswith("4 to run; estimate 0.4 GPU h for the rest")
