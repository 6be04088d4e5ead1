"""What the report adds to a table's declaration: its columns and their labels.

Reading and checking a declaration (`load`, `table_ids`, `requested`, profiles, recipe sources, baseline
comparisons) is tables/declaration.py's, the one reader both `adamix-table` and `adamix-report` use; it is
OmegaConf only, so importing it keeps the report free of torch. Here a declaration is a plain dict (resolved), as
grid.py and baseline.py read it.

`columns` is keyed by task (`mnli: {metric, label}`); a table with several metrics of one task (E2E's BLEU, NIST,
...) keys its columns by any id and names the task in each (`bleu: {task: e2e, metric: test/bleu, label: BLEU}`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from omegaconf import OmegaConf

from adamix_runner.tables import declaration as contract
from adamix_runner.tables.declaration import baseline_pairs, profile_model, recipe_source, row_ids, table_ids

# the report's own names, then the contract's, which grid.py and baseline.py read through this module
__all__ = ["METRIC_LABELS", "Column", "columns", "load", "table_id"]
__all__ += ["baseline_pairs", "profile_model", "recipe_source", "row_ids", "table_ids"]


@dataclass(frozen=True)
class Column:
    id: str
    task: str
    metric: str | None  # None: the run's primary metric
    label: str


def table_id(name: str) -> str:
    """`table=1` means table1."""
    return f"table{name}" if name.isdigit() else name


def load(name: str) -> dict[str, Any]:
    """The checked declaration of table `name` (tables/declaration.load: the same checks as adamix-table's), as a
    plain dict."""
    return OmegaConf.to_container(contract.load(table_id(name)), resolve=True)


METRIC_LABELS = {
    **{"accuracy": "Acc", "f1": "F1", "matthews": "Mcc", "pearson": "Pearson", "spearman": "Spearman"},
    **{"bleu": "BLEU", "nist": "NIST", "meteor": "MET", "rouge_l": "ROUGE-L", "cider": "CIDEr", "ter": "TER"},
}


def _also(key: str, spec: dict[str, Any]) -> list[Column]:
    """A column's `also` metrics (QQP's F1 beside its accuracy, E2E's NIST ... beside BLEU) as columns of their
    own, `<column>:<metric>`; the average counts the main column only."""
    main = spec.get("label", key)
    main_is_metric = main == METRIC_LABELS.get((spec.get("metric") or "").split("/")[-1])
    extra = []
    for metric in spec.get("also") or []:
        name = METRIC_LABELS.get(metric.split("/")[-1], metric.split("/")[-1])
        extra.append(
            Column(
                f"{key}:{metric.split('/')[-1]}",
                spec.get("task", key),
                metric,
                name if main_is_metric else f"{main} {name}",
            )
        )
    return extra


def columns(table: dict[str, Any]) -> list[Column]:
    """The report's columns, in the declaration's order, each followed by its `also` metrics; a task without a
    declared column reports its primary metric."""
    found = []
    for key, spec in (table.get("columns") or {}).items():
        found.append(Column(key, spec.get("task", key), spec.get("metric"), spec.get("label", key)))
        found += _also(key, spec)
    covered = {column.task for column in found}
    found += [Column(task, task, None, task) for task in table.get("tasks", []) if task not in covered]
    return found
