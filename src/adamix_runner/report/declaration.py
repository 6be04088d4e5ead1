"""A table's declaration (conf/table/<id>.yaml, the contract in docs/ARCHITECTURE.md), read without Hydra.

Keys read here: id, title, paper_table, kind (grid | inference), profiles.<name>.model, tasks, columns, average,
seeds, recipes.<task>.source, rows (id, label, paper_row, match, source, recipe, not_run), baseline and, for
inference tables, from, rows_from, rules, random_eval_seeds. Other keys (the launch side's) are ignored.

`baseline` names what each cell is compared with: one row id (every other row against it), or a list of
[row, baseline row] pairs. An inference table's rows are `<source row>:<rule>`.

`columns` is keyed by task (`mnli: {metric, label}`); a table with several metrics of one task (E2E's BLEU, NIST,
...) keys its columns by any id and names the task in each (`bleu: {task: e2e, metric: test/bleu, label: BLEU}`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

import adamix_runner.conf
from adamix_runner.errors import UserError

TABLE_DIR = Path(adamix_runner.conf.__file__).parent / "table"


@dataclass(frozen=True)
class Column:
    id: str
    task: str
    metric: str | None  # None: the run's primary metric
    label: str


def table_ids(folder: Path | None = None) -> list[str]:
    return sorted(path.stem for path in (folder or TABLE_DIR).glob("*.yaml"))


def table_id(name: str) -> str:
    """`table=1` means table1."""
    return f"table{name}" if name.isdigit() else name


def load(name: str, folder: Path | None = None) -> dict[str, Any]:
    """The declaration of table `name` from `folder` (default: the installed conf/table/)."""
    path = (folder or TABLE_DIR) / f"{table_id(name)}.yaml"
    if not path.exists():
        known = ", ".join(table_ids(folder)) or "none"
        raise UserError(f"table={name}: no declaration {path}; declared tables: {known}.")
    table = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    for key in ("id", "rows"):
        if key not in table and not (key == "rows" and table.get("kind") == "inference"):
            raise UserError(f"{path} has no `{key}` key (see the table contract in docs/ARCHITECTURE.md).")
    return table


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


def row_ids(table: dict[str, Any]) -> list[str]:
    """The ids of the rows a built table has: the declared rows, or an inference table's `<source row>:<rule>`."""
    if table.get("kind") != "inference":
        return [row["id"] for row in table.get("rows") or []]
    declared = [row["rule"] for row in table.get("rows") or [] if "rule" in row] or list(table.get("rules") or [])
    return [f"{row}:{rule}" for row in table.get("rows_from") or [] for rule in declared]


def baseline_pairs(table: dict[str, Any], rows: list[str]) -> list[tuple[str, str]]:
    """The declared (row, baseline row) comparisons, checked against the table's rows `rows`."""
    spec = table.get("baseline")
    if spec is None:
        return []
    where = f"table {table.get('id')}: baseline"
    if isinstance(spec, str):
        not_run = {row["id"] for row in table.get("rows") or [] if row.get("not_run")}
        pairs = [(row, spec) for row in rows if row != spec and row not in not_run]
    elif isinstance(spec, list) and all(isinstance(p, list | tuple) and len(p) == 2 for p in spec):
        pairs = [(str(row), str(base)) for row, base in spec]
    else:
        raise UserError(f"{where} must be a row id or a list of [row, baseline row] pairs, not {spec!r}.")
    for name in {name for pair in pairs for name in pair} | ({spec} if isinstance(spec, str) else set()):
        if name not in rows:
            raise UserError(f"{where} names '{name}', which is no row of the table; its rows: {', '.join(rows)}.")
    for row, base in pairs:
        if row == base:
            raise UserError(f"{where} compares row '{row}' with itself; name two different rows.")
    return pairs


def profile_model(table: dict[str, Any], profile: str) -> str | None:
    profiles = table.get("profiles") or {}
    if profiles and profile not in profiles:
        raise UserError(f"profile={profile} is not a profile of table {table['id']}: {', '.join(profiles)}.")
    return (profiles.get(profile) or {}).get("model")


def recipe_source(table: dict[str, Any], row: dict[str, Any], task: str) -> str:
    """Where a cell's recipe comes from: the row's own source, or the task's recipe source for rows that use it."""
    recipe = (table.get("recipes") or {}).get(task)
    if row.get("recipe") == "none" or recipe is None:
        return row.get("source", "")
    return recipe.get("source", "")
