"""`adamix-report`: run folders -> the paper's tables and figures, or a summary of any sweep.

    adamix-report table=table1 [runs=outputs] [profile=paper|smoke] [seeds=N] [out=<runs>/reports]
    adamix-report table=all ...                 the paper tables, as adamix-table all (not the cpu_demo ones)
    adamix-report sweep runs=<folder> [name=sweep] [out=<folder>/reports]

table=1 is short for table=table1. `runs` is the output root (the folder with runs/, or any folder of run
folders; default outputs for the paper profile and outputs/smoke for the smoke one). A table writes
<out>/<id>.md, .csv, .tex, <id>-curves.png (training loss per task and row) and, for inference tables with random
routing (Figure 5), <id>-violin.png. A table that declares a `baseline` also gets, in <id>.md and .tex, the
difference of each cell from its baseline cell with a 95 % interval over seeds (paired t when the seeds pair the
runs, else Welch's t; ‡ where it excludes 0), and <id>-differences.csv. A sweep writes <out>/<name>.md, .csv,
.tex, <name>-curves.png and, when it varies peft.adapter_dim and peft.num_experts, <name>-heatmap*.png.
Exit 2 with one line on bad input; --help prints this.
"""

from __future__ import annotations

import sys
from pathlib import Path

from adamix_runner.errors import UserError
from adamix_runner.report import baseline, declaration, figures, grid, render, sweep
from adamix_runner.report import paper as paper_data
from adamix_runner.report.aggregate import scale
from adamix_runner.report.runs import RunRecord, scan
from adamix_runner.tables.declaration import DEFAULT_ROOTS, requested

KEYS = {"table", "runs", "profile", "seeds", "out", "name"}


def parse(argv: list[str]) -> tuple[str, dict[str, str]]:
    """`sweep` or `table=...` plus key=value options; `help` for the usage."""
    mode, options = "table", {}
    if any(arg in ("-h", "--help", "help") for arg in argv):
        return "help", options
    for arg in argv:
        if arg == "sweep":
            mode = "sweep"
            continue
        key, sep, value = arg.partition("=")
        if not sep or key not in KEYS:
            raise UserError(
                f"unknown argument {arg!r}; use key=value with keys {', '.join(sorted(KEYS))}, or `sweep`."
            )
        options[key] = value
    if mode == "table" and "table" not in options:
        raise UserError("say which table: adamix-report table=table1 (or table=all), or adamix-report sweep runs=DIR.")
    if mode == "sweep" and "runs" not in options:
        raise UserError("adamix-report sweep needs runs=<folder of run folders>.")
    return mode, options


def _curves(table: grid.Table) -> dict[str, dict[str, list[tuple[int, float]]]]:
    panels: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for column in table.columns:
        lines = panels.setdefault(column.label, {})
        for row in table.rows:
            done = [run for run in row.runs.get(column.id, []) if run.status == "completed"]
            if done and row.label not in lines:
                lines[row.label] = done[0].curve()
    return panels


def _violin(table: grid.Table, decl: dict, out: Path) -> Path | None:
    """Figure 5: each random-routing evaluation of each run, per task, and the merged result."""
    random_rows = [row for row in table.rows if row.id.endswith(":random")]
    if not random_rows:
        return None
    seeds = decl.get("random_eval_seeds") or 1
    merged_rows = {row.id.rsplit(":", 1)[0]: row for row in table.rows if row.id.endswith(":merge")}
    samples: dict[str, list[float]] = {}
    merged: dict[str, float | None] = {}
    source = random_rows[0]
    merge_row = merged_rows.get(source.id.rsplit(":", 1)[0])
    for column in table.columns:
        values = []
        for run in source.runs.get(column.id, []):
            metric = column.metric or run.primary_metric
            for k in range(seeds):
                found = run.evaluations.get(f"random-seed{k}", {}).get("metrics", {})
                if metric in found:
                    values.append(found[metric] * scale(metric))
        samples[column.label] = values
        stats = merge_row.cells[column.id].stats if merge_row else None
        merged[column.label] = stats.mean if stats else None
    readings = {c.label: paper_data.figure5(table.model, c.task, c.metric) for c in table.columns}
    paper = {label: (*entry["random"], entry["adamix"]) for label, entry in readings.items() if entry}
    title = f"{table.id}: random routing ({seeds} eval seeds per run) vs merged (red)"
    return figures.violin(samples, merged, out / f"{table.id}-violin.png", title, paper or None)


def report_table(name: str, root: Path, profile: str, out: Path, seeds: int | None) -> list[Path]:
    decl = declaration.load(name)
    runs = scan(root) if root.exists() else []
    table = grid.build(decl, runs, profile, seeds)
    comparisons = baseline.compare(table, baseline.table_pairs(decl), (decl.get("average") or {}).get("columns"))
    sheets = [render.sheet(table)] + ([baseline.sheet(table, comparisons)] if comparisons else [])
    written = render.write(out, table.id, sheets, render.records(table))
    if comparisons:
        differences = baseline.records(table, comparisons)
        written.append(render.write_csv(out / f"{table.id}-differences.csv", differences))
    written.append(
        figures.curves(_curves(table), out / f"{table.id}-curves.png", f"{table.id}: training loss", "train/loss")
    )
    violin = _violin(table, decl, out) if decl.get("kind") == "inference" else None
    return written + ([violin] if violin else [])


def report_sweep(root: Path, out: Path, name: str) -> list[Path]:
    runs: list[RunRecord] = scan(root)
    if not runs:
        raise UserError(f"no run folders (results.json) under {root}.")
    page, rows = sweep.sheet(name, runs)
    written = render.write(out, name, [page], rows)
    keys, grouped = sweep.groups(runs)
    panels: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for values, members in grouped.items():
        label = ", ".join(f"{k.split('.')[-1]}={v}" for k, v in zip(keys, values, strict=True)) or "runs"
        first = min(members, key=lambda run: run.get("seed", 0))
        panels.setdefault(first.get("task.name", "task"), {})[label] = first.curve()
    written.append(figures.curves(panels, out / f"{name}-curves.png", f"{name}: training loss", "train/loss"))
    for i, (title, values) in enumerate(sweep.heatmaps(runs).items()):
        suffix = f"-{i}" if i else ""
        written.append(figures.heatmap(values, out / f"{name}-heatmap{suffix}.png", title or name, "primary metric"))
    return written


def report(argv: list[str]) -> list[Path]:
    mode, options = parse(argv)
    if mode == "help":
        print(__doc__.strip())
        return []
    if mode == "sweep":
        root = Path(options["runs"])
        return report_sweep(root, Path(options.get("out", root / "reports")), options.get("name", "sweep"))
    profile = options.get("profile", "paper")
    root = Path(options.get("runs", DEFAULT_ROOTS.get(profile, DEFAULT_ROOTS["paper"])))
    out = Path(options.get("out", root / "reports"))
    seeds = options.get("seeds")
    if seeds is not None and not (seeds.isdigit() and int(seeds) > 0):
        raise UserError(f"seeds={seeds} must be a positive integer.")
    names = requested(options["table"])
    written = []
    for name in names:
        written += report_table(name, root, profile, out, int(seeds) if seeds else None)
    return written


def main(argv: list[str] | None = None) -> None:
    try:
        written = report(sys.argv[1:] if argv is None else argv)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    for path in written:
        print(path)
