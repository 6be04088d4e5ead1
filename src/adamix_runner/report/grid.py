"""A declared table built from run folders: one cell per (row, column), one value per seed, the paper beside it.

Grid tables read each run's results.json; inference tables (Table 7, Figure 5) read the evaluations/*.json that
`adamix-evaluate` wrote into the runs of their source table, one row per (source row, rule).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from adamix_runner.errors import UserError
from adamix_runner.report import declaration, paper
from adamix_runner.report.aggregate import SeedValues, average, scale
from adamix_runner.report.declaration import Column
from adamix_runner.report.runs import RunRecord
from adamix_runner.run_folder import evaluation_names

RULE_LABELS = {
    "merge": "merging",
    "random": "random routing",
    "fixed": "fixed routing (first module)",
    "ensemble": "output ensemble",
    "experts": "single expert (mean over the experts)",
}


@dataclass
class Row:
    id: str
    label: str
    cells: dict[str, SeedValues]
    sources: dict[str, str]  # column id -> where the cell's recipe comes from
    own_source: str = ""  # the row's own "ours: ..." source, which overrides the tasks' recipes
    params: list[int] = field(default_factory=list)  # our params.inference (distinct values)
    paper: dict[str, float | str | None] = field(default_factory=dict)
    paper_params: str | None = None
    average: SeedValues | None = None
    paper_average: float | None = None
    runs: dict[str, list[RunRecord]] = field(default_factory=dict)  # column id -> the runs used
    not_run: str | None = None  # why the row has no runs (no such method): the paper's number only


@dataclass
class Table:
    id: str
    title: str
    columns: list[Column]
    rows: list[Row]
    model: str | None
    seeds: int
    average_label: str | None = None
    params_decimals: int = 2
    notes: list[str] = field(default_factory=list)


def _same(ours: Any, wanted: Any) -> bool:
    return ours == wanted or str(ours) == str(wanted)


def matches(run: RunRecord, match: dict[str, Any], task: str, model: str | None) -> bool:
    """The row's match keys, the task and the profile's model (seed apart) identify a cell's runs; eval_only runs
    (an evaluation of another run's adapter) are never a cell's run."""
    if run.get("task.name") != task or (model is not None and run.get("model.name") != model):
        return False
    if run.get("eval_only"):
        return False
    return all(_same(run.get(key), value) for key, value in (match or {}).items())


def _pick(candidates: list[RunRecord]) -> RunRecord:
    """Of several runs of one cell and seed (a rerun with another recipe), the newest completed one."""
    return max(candidates, key=lambda run: (run.status == "completed", run.mtime))


Value = Callable[[RunRecord, Column], "float | str"]  # a number, or the status word of a run without one


def result_value(run: RunRecord, column: Column) -> float | str:
    if run.status != "completed":
        return run.status
    metric = column.metric or run.primary_metric
    return run.metrics[metric] * scale(metric) if metric in run.metrics else "no metric"


def rule_value(rule: str, random_seeds: int | None) -> Value:
    """A run's value under an inference rule, from its evaluations/*.json; random routing is the mean over its
    evaluation seeds (the first `random_seeds`), `fixed` its first expert, `experts` the mean of its single
    experts."""

    def value(run: RunRecord, column: Column) -> float | str:
        if run.status != "completed":
            return run.status
        metric = column.metric or run.primary_metric
        names = evaluation_names([rule], int(run.get("peft.num_experts") or 1), random_seeds or 1)
        found = [run.evaluations.get(name) for name in names]
        if rule == "merge" and found[0] is None and run.get("peft.inference") == "merge":
            found = [{"metrics": run.metrics}]  # the run's own final evaluation is the merged one
        if any(record is None for record in found):
            return "not evaluated"
        values = [record["metrics"].get(metric) for record in found]
        return "no metric" if None in values else sum(values) / len(values) * scale(metric)

    return value


def build_cell(runs: list[RunRecord], row: dict, column: Column, model: str | None, seeds: int, value: Value):
    cell, used = SeedValues(), []
    for seed in range(seeds):
        candidates = [r for r in runs if r.get("seed") == seed and matches(r, row.get("match"), column.task, model)]
        if not candidates:
            continue
        run = _pick(candidates)
        used.append(run)
        result = value(run, column)
        if isinstance(result, str):
            cell.statuses[seed] = result
        else:
            cell.values[seed] = result
    return cell, used


def _source(table: dict, row: dict, task: str) -> str:
    own = row.get("source", "")
    return own if own.startswith("ours") else declaration.recipe_source(table, row, task) or own


def _row(spec: dict, label: str, table: dict, columns: list[Column], runs, model, seeds: int, value: Value) -> Row:
    own = spec.get("source", "")
    result = Row(id=spec["id"], label=label, cells={}, sources={}, own_source=own if own.startswith("ours") else "")
    result.not_run = spec.get("not_run")
    if not result.not_run and not spec.get("match"):
        raise UserError(f"table {table['id']}, row {spec['id']}: no `match` (the config keys that find its runs).")
    for column in columns:
        if result.not_run:
            result.cells[column.id], result.sources[column.id] = SeedValues(note="not run"), ""
            continue
        result.sources[column.id] = _source(table, spec, column.task)
        result.cells[column.id], result.runs[column.id] = build_cell(runs, spec, column, model, seeds, value)
        result.params = sorted(
            set(result.params) | {r.params["inference"] for r in result.runs[column.id] if r.params}
        )
    return result


def _add_paper(row: Row, table: dict, columns: list[Column], paper_row: dict | None) -> None:
    if paper_row is None:
        return
    row.paper = {c.id: paper.value(paper_row, c.task, c.metric or "") for c in columns}
    row.paper_params = paper_row.get("params")
    row.paper_average = paper_row.get("avg")


def _figure5_paper(row: Row, rule: str, columns: list[Column], model: str | None) -> None:
    for column in columns:
        entry = paper.figure5(model, column.task, column.metric)
        if entry is not None:
            low, high = entry["random"]
            row.paper[column.id] = (
                entry["adamix"] if rule == "merge" else f"{low}–{high}" if rule == "random" else None
            )


def _with_average(row: Row, table: dict, columns: list[Column]) -> None:
    spec = table.get("average")
    if spec:
        row.average = average([row.cells[c] for c in spec.get("columns", [c.id for c in columns]) if c in row.cells])


def build(table: dict, runs: list[RunRecord], profile: str = "paper", seeds: int | None = None) -> Table:
    """The declared table over `runs`; `seeds` overrides the declaration's number of seeds."""
    if table.get("kind", "grid") == "inference":
        return _build_inference(table, runs, profile, seeds)
    model = declaration.profile_model(table, profile)
    n_seeds = seeds or table.get("seeds", 1)
    columns = declaration.columns(table)
    paper_table = table.get("paper_table")
    result = _table(table, columns, model, n_seeds)
    for spec in table["rows"]:
        row = _row(spec, spec.get("label", spec["id"]), table, columns, runs, model, n_seeds, result_value)
        _add_paper(row, table, columns, paper.row(paper_table, spec.get("paper_row")))
        _with_average(row, table, columns)
        result.rows.append(row)
    return result


def _table(table: dict, columns: list[Column], model: str | None, seeds: int) -> Table:
    data = paper.load().get(table.get("paper_table") or "", {})
    notes = [f"paper: {data['source']}"] if data.get("source") else []
    notes += [f"paper: {data['note']}"] if data.get("note") else []
    if not data:
        notes.append("the paper's numbers for this table were not retrieved: ours only")
    return Table(
        id=table["id"],
        title=table.get("title", table["id"]),
        columns=columns,
        rows=[],
        model=model,
        seeds=seeds,
        average_label=(table.get("average") or {}).get("label"),
        params_decimals=data.get("params_decimals", 2),
        notes=notes,
    )


def rules(table: dict) -> list[tuple[str, str]]:
    """(rule, label) per row of an inference table: its `rows` with a `rule` each, else its `rules` list."""
    declared = [row for row in table.get("rows") or [] if "rule" in row]
    if declared:
        return [(row["rule"], row.get("label", row["rule"])) for row in declared]
    return [(rule, RULE_LABELS.get(rule, rule)) for rule in table.get("rules", list(RULE_LABELS))]


def _build_inference(table: dict, runs: list[RunRecord], profile: str, seeds: int | None) -> Table:
    if "from" not in table:
        raise UserError(f"inference table {table['id']} has no `from` (the table whose runs it evaluates).")
    source = declaration.load(table["from"])
    model = declaration.profile_model(source if not table.get("profiles") else table, profile)
    n_seeds = seeds or table.get("seeds") or source.get("seeds", 1)
    columns = declaration.columns(table if table.get("columns") or table.get("tasks") else source)
    chosen = table.get("rows_from") or [row["id"] for row in source["rows"]]
    unknown = [name for name in chosen if name not in {row["id"] for row in source["rows"]}]
    if unknown:
        raise UserError(f"table {table['id']}: rows_from {unknown} are not rows of {source['id']}.")
    result = _table(table, columns, model, n_seeds)
    result.notes.append(f"runs of {source['id']}, evaluated under each rule by adamix-evaluate (evaluations/*.json)")
    for spec in (row for row in source["rows"] if row["id"] in chosen):
        for rule, rule_label in rules(table):
            label = rule_label if len(chosen) == 1 else f"{spec.get('label', spec['id'])}: {rule_label}"
            value = rule_value(rule, table.get("random_eval_seeds"))
            row = _row({**spec, "id": f"{spec['id']}:{rule}"}, label, source, columns, runs, model, n_seeds, value)
            if table.get("paper_table") == "figure5":
                _figure5_paper(row, rule, columns, model)
            _with_average(row, table, columns)
            result.rows.append(row)
    return result
