"""A table is data: `conf/table/<id>.yaml` (the declaration contract, docs/ARCHITECTURE.md "Tables").

The one reader of a declaration, for both faces: `adamix-table` (and its sweeper plugin) and `adamix-report`. It
loads and checks a declaration, names the tables `all` means, the profiles and their output roots, the recipe of
a cell, the baseline comparisons, and expands a declaration into cells (row x task), each with the exact
`adamix-run` overrides that train it. It uses OmegaConf alone (no Hydra compose, no training code, no torch), so the
sweeper plugin, the planner and the report read tables the same way; the report adds only its columns and labels
(report/declaration.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

import adamix_runner.conf
from adamix_runner.errors import UserError

TABLE_DIR = Path(adamix_runner.conf.__file__).parent / "table"
PROFILES = ("paper", "smoke")
KINDS = ("grid", "inference")
DEFAULT_ROOTS = {"paper": "outputs", "smoke": "outputs/smoke"}  # a profile's output root unless it names one
ALL = "all"


@dataclass(frozen=True)
class Cell:
    """One row x task of a grid table: trained once per seed by `adamix-run <overrides> seed=<k>`."""

    row: str
    task: str
    overrides: tuple[str, ...]
    source: str  # "paper", or "ours: ..." when any part of the recipe is not the paper's

    @property
    def name(self) -> str:
        return f"{self.row}/{self.task}"


def table_ids() -> list[str]:
    """Every declared table, in a launch order where grid tables come before the inference tables that read them."""
    ids = sorted(path.stem for path in TABLE_DIR.glob("*.yaml"))
    return sorted(ids, key=lambda table_id: (load(table_id).kind == "inference", _numeric(table_id)))


def paper_table_ids() -> list[str]:
    """The tables `make tables` runs: every declared one but the real CPU tables (`cpu_demo: true`: table-demo,
    study), which are runs on this machine's offline assets, not the paper's."""
    return [table_id for table_id in table_ids() if not load(table_id).get("cpu_demo", False)]


def requested(name: str) -> list[str]:
    """The tables one request names, the same for `adamix-table` and `adamix-report`: `all` is the paper tables
    (`paper_table_ids`, launch order: grids, then the inference tables that read them), else the one table."""
    return paper_table_ids() if name == ALL else [name]


def _numeric(table_id: str) -> tuple[str, int]:
    digits = "".join(ch for ch in table_id if ch.isdigit())
    return (table_id.rstrip("0123456789"), int(digits) if digits else 0)


def load(table_id: str) -> DictConfig:
    """The declaration of `table_id`, checked; an unknown id lists the declared ones."""
    path = TABLE_DIR / f"{table_id}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in TABLE_DIR.glob("*.yaml")))
        raise UserError(f"no table '{table_id}' (no {path.name} in conf/table); declared tables: {known}")
    decl = OmegaConf.load(path)
    _check(decl, path.name)
    return decl


def _check(decl: DictConfig, name: str) -> None:
    def require(condition: bool, message: str) -> None:
        if not condition:
            raise UserError(f"conf/table/{name}: {message}")

    for key in ("id", "title", "kind", "profiles", "tasks", "rows"):
        require(key in decl, f"missing key '{key}'")
    require(decl.id == Path(name).stem, f"id '{decl.id}' differs from the file name")
    require(decl.kind in KINDS, f"kind must be one of {KINDS}, not '{decl.kind}'")
    require(set(decl.profiles) <= set(PROFILES), f"profiles must be among {PROFILES}")
    require("paper" in decl.profiles, "needs a paper profile")
    declared = [row.id for row in decl.rows]
    require(len(declared) == len(set(declared)), "row ids must be unique")
    plain = OmegaConf.to_container(decl, resolve=False)
    try:
        baseline_pairs(plain, row_ids(plain))
    except UserError as error:
        raise UserError(f"conf/table/{name}: {error}") from None
    for task in decl.get("recipes") or {}:
        require(task in decl.tasks, f"recipe for '{task}', which is not among tasks {list(decl.tasks)}")
    if decl.kind == "inference":
        require("from" in decl and "rows_from" in decl and "rules" in decl, "inference needs from, rows_from, rules")
        for row in decl.rows:
            require(row.get("rule") in decl.rules, f"row '{row.id}' needs a rule among {list(decl.rules)}")
        return
    for row in decl.rows:
        require(("overrides" in row) != ("not_run" in row), f"row '{row.id}' needs overrides or not_run (one)")


def row_ids(table: Mapping[str, Any]) -> list[str]:
    """The ids of the rows a built table has: the declared rows, or an inference table's `<source row>:<rule>`."""
    if table.get("kind") != "inference":
        return [row["id"] for row in table.get("rows") or []]
    declared = [row["rule"] for row in table.get("rows") or [] if "rule" in row] or list(table.get("rules") or [])
    return [f"{row}:{rule}" for row in table.get("rows_from") or [] for rule in declared]


def baseline_pairs(table: Mapping[str, Any], rows: list[str]) -> list[tuple[str, str]]:
    """The declared (row, baseline row) comparisons, checked against the table's rows `rows`: `baseline` is one
    row id (every other run row against it) or a list of [row, baseline row] pairs."""
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


def output_root(decl: DictConfig, profile: str) -> str:
    return str(profile_of(decl, profile).get("output_root") or DEFAULT_ROOTS[profile])


def profile_of(decl: Mapping[str, Any], profile: str) -> Any:
    """`profiles.<profile>` of a declaration (a DictConfig, or the report's plain dict)."""
    if profile not in decl["profiles"]:
        raise UserError(f"table {decl['id']} has no profile '{profile}'; it has: {', '.join(decl['profiles'])}")
    return decl["profiles"][profile]


def profile_model(table: Mapping[str, Any], profile: str) -> str | None:
    """The model a profile trains (`profiles.<profile>.model`), which the report's cells are matched on."""
    return (profile_of(table, profile) or {}).get("model")


def recipe(table: Mapping[str, Any], row: Mapping[str, Any], task: str) -> Mapping[str, Any] | None:
    """The per-task recipe a row's cell takes: the task's `recipes` entry, none for a row with `recipe: none`."""
    return None if row.get("recipe") == "none" else (table.get("recipes") or {}).get(task)


def recipe_source(table: Mapping[str, Any], row: Mapping[str, Any], task: str) -> str:
    """Where a cell's recipe comes from: the row's own source, or the task's recipe source for rows that use it."""
    taken = recipe(table, row, task)
    return row.get("source", "") if taken is None else taken.get("source", "")


def seeds(decl: DictConfig, count: int | None) -> list[int]:
    """seed=0..n-1, n from SEEDS= or the table's `seeds` (default 3)."""
    n = int(decl.get("seeds", 3)) if count is None else count
    if n < 1:
        raise UserError(f"SEEDS must be at least 1, not {n}")
    return list(range(n))


def grid_source(decl: DictConfig) -> DictConfig:
    """The grid table whose runs a table reads: itself, or `from` for an inference table."""
    return decl if decl.kind == "grid" else load(decl["from"])


def cells(decl: DictConfig, profile: str) -> list[Cell]:
    """The cells to train for `decl` (for an inference table: its `rows_from` rows of the source grid)."""
    grid = grid_source(decl)
    wanted = set(decl.rows_from) if decl.kind == "inference" else None
    rows = [row for row in grid.rows if "not_run" not in row and (wanted is None or row.id in wanted)]
    if wanted is not None and len(rows) != len(wanted):
        raise UserError(f"table {decl.id}: rows_from {sorted(wanted)} are not all run rows of {grid.id}")
    return [_cell(grid, row, task, profile) for row in rows for task in grid.tasks]


def _cell(grid: DictConfig, row: DictConfig, task: str, profile: str) -> Cell:
    prof = profile_of(grid, profile)
    taken = recipe(grid, row, task)
    overrides = [f"task={task}"]
    if prof.get("model"):
        overrides.append(f"model={prof.model}")
    overrides += _strings(grid.get("common"))
    overrides += _strings(taken.overrides) if taken else []
    overrides += _strings(row.overrides)
    overrides += _strings(prof.get("overrides"))
    overrides += _strings((prof.get("tasks") or {}).get(task))
    overrides.append(f"output_root={output_root(grid, profile)}")
    sources = [str(row.get("source", "paper")), str(taken.source) if taken else "paper"]
    ours = [source for source in sources if source.startswith("ours")]
    return Cell(row.id, task, tuple(overrides), "; ".join(ours) if ours else "paper")


def _strings(values: ListConfig | None) -> list[str]:
    return [str(value) for value in values or []]


def job_overrides(cell_list: list[Cell], seed_list: list[int], extra: list[str]) -> list[list[str]]:
    """One override list per training run: the cell's, its seed, then the user's extra overrides (which win)."""
    return [[*cell.overrides, f"seed={seed}", *extra] for cell in cell_list for seed in seed_list]
