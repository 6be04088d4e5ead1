"""The paper's numbers (paper_results.yaml, with their sources), looked up by table and row label."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from adamix_runner.errors import UserError

PAPER_FILE = Path(__file__).with_name("paper_results.yaml")


@cache
def load() -> dict[str, Any]:
    return OmegaConf.to_container(OmegaConf.load(PAPER_FILE))


def normalize(label: str) -> str:
    """Labels compare without the paper's source markers (†, ◇), parentheses, case and spacing: "UniPELT (AP)"
    finds "UNIPELT (AP)†", "Pfeiffer Adapter 3.0M" finds "Pfeiffer Adapter† (3.0M)"."""
    return re.sub(r"\s+", " ", re.sub(r"[†◇()]", "", label)).strip().lower()


def rows(table: str) -> dict[str, dict[str, Any]]:
    """The table's rows by key: the printed label, or "<label> (<#Param>)" where the label is printed twice."""
    entries = load().get(table, {}).get("rows") or []
    labels = [row["label"] for row in entries]
    return {
        (row["label"] if labels.count(row["label"]) == 1 else f"{row['label']} ({row['params']})"): row
        for row in entries
    }


def row(table: str | None, key: str | None) -> dict[str, Any] | None:
    """The paper's row that a declaration's `paper_row` names; None when the table or the row has no numbers."""
    if table is None or key is None:
        return None
    found = {normalize(k): value for k, value in rows(table).items()}
    if not found:
        return None
    if normalize(key) not in found:
        raise UserError(f"paper_row {key!r} is not a row of the paper's {table}; its rows: {', '.join(rows(table))}.")
    return found[normalize(key)]


def value(paper_row: dict[str, Any] | None, task: str, metric: str) -> float | None:
    """The printed number of `task`'s `metric` (its last part: validation/accuracy -> accuracy)."""
    if paper_row is None:
        return None
    return paper_row["results"].get(task, {}).get(metric.split("/")[-1])


def figure5(model: str | None, task: str, metric: str | None) -> dict[str, Any] | None:
    """Figure 5's reading for `model` and `task` ({"random": [low, high], "adamix": value}), when the column
    reports the metric the figure shows."""
    figure = load()["figure5"]
    entry = (figure["models"].get(model or "") or {}).get(task)
    return entry if entry and (metric or "").split("/")[-1] == figure["metrics"][task] else None


def format_params(count: int | None, decimals: int = 2) -> str:
    """A parameter count the way the paper prints it: 811,392 -> 0.8M (one decimal) or 0.81M (two)."""
    return "" if count is None else f"{count / 1e6:.{decimals}f}M"
