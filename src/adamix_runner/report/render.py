"""Tables as text: a built table -> a sheet (the paper's layout: ours, the paper's number, the difference) and long
records; sheets -> Markdown and LaTeX, records -> CSV."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adamix_runner.report.aggregate import difference
from adamix_runner.report.grid import Row, Table
from adamix_runner.report.paper import format_params

OURS_MARK = "*"  # a cell whose recipe is ours, not the paper's


@dataclass
class Sheet:
    title: str
    header: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)


def _number(value: float | str | None) -> str:
    """A paper number as printed (90.2, 8.62, 55.37)."""
    return "–" if value is None else str(value)


def _signed(value: float | None) -> str:
    return "" if value is None else f"{value:+.2f}"


OFFICIAL_PRECISION = "fp32"  # the official scripts train in fp32


def _recipe(row: Row) -> str:
    """paper / ours, and the precision the row's runs trained in when it is not the official fp32."""
    if row.not_run:
        return f"not run: {row.not_run}"
    recipe = "+".join(sorted({source.split(":")[0].strip() for source in row.sources.values() if source}))
    other = sorted({run.precision() for runs in row.runs.values() for run in runs} - {OFFICIAL_PRECISION})
    return f"{recipe}; {'/'.join(other)}, not the official fp32" if other else recipe


def sheet(table: Table) -> Sheet:
    """Per declared row: our line (mean ± std (n), a status word where there is no value), then the paper's line
    and the difference where the paper has numbers."""
    with_average = table.average_label is not None
    header = ["Method", "#Param", *(c.label for c in table.columns)]
    header += [table.average_label] if with_average else []
    header += ["Recipe"]
    rows = []
    for row in table.rows:
        ours = [
            row.cells[c.id].format() + (OURS_MARK if row.sources[c.id].startswith("ours") else "")
            for c in table.columns
        ]
        params = "/".join(format_params(count, table.params_decimals) for count in row.params)
        average = [row.average.format() if row.average else "–"] if with_average else []
        rows.append([row.label, params, *ours, *average, _recipe(row)])
        if any(value is not None for value in row.paper.values()):
            paper = [_number(row.paper.get(c.id)) for c in table.columns]
            rows.append(
                ["  paper", row.paper_params or "", *paper, *([_number(row.paper_average)] * with_average), ""]
            )
            if all(cell.stats is None for cell in row.cells.values()):
                continue
            diffs = [_signed(_diff(row, c.id)) for c in table.columns]
            avg_diff = [_signed(difference(row.average.stats if row.average else None, row.paper_average))]
            rows.append(["  Δ (ours − paper)", "", *diffs, *(avg_diff * with_average), ""])
    notes = [
        f"ours: mean ± sample std (n seeds) of seed{f's 0..{table.seeds - 1}' if table.seeds > 1 else ' 0'}"
        + (f", model {table.model}" if table.model else "")
        + "; a word where a cell has no value (missing: no run; failed; not run: no method)",
        f"{OURS_MARK}: the cell's recipe is ours, not the paper's (Recipe column: paper / ours)",
        *_recipe_notes(table),
        *table.notes,
    ]
    return Sheet(f"{table.id}: {table.title}", header, rows, notes)


def _diff(row: Row, column: str) -> float | None:
    paper = row.paper.get(column)
    return None if isinstance(paper, str) else difference(row.cells[column].stats, paper)


def _recipe_notes(table: Table) -> list[str]:
    """Where the recipes come from: a row's own source, else the tasks' recipes (each source once)."""
    by_row: dict[str, list[str]] = {}
    by_task: dict[str, list[str]] = {}
    for row in table.rows:
        if row.own_source:
            by_row.setdefault(row.own_source, []).append(row.label)
            continue
        for column in table.columns:
            source = row.sources.get(column.id) or ""
            labels = by_task.setdefault(source, [])
            if source and column.label not in labels:
                labels.append(column.label)
    notes = [f"recipe of {', '.join(labels)}: {source}" for source, labels in by_task.items() if source and labels]
    return notes + [f"recipe of the rows {'; '.join(labels)}: {source}" for source, labels in by_row.items()]


def records(table: Table) -> list[dict[str, Any]]:
    """One record per (row, column) and per row's average: the CSV."""
    out = []
    for row in table.rows:
        params = "/".join(str(count) for count in row.params)
        cells = [
            (c.id, c.task, c.metric, row.cells[c.id], row.paper.get(c.id), row.sources[c.id]) for c in table.columns
        ]
        if row.average is not None:
            cells.append(("average", "", "average", row.average, row.paper_average, ""))
        for column, task, metric, cell, paper_value, source in cells:
            stats = cell.stats
            numeric = None if isinstance(paper_value, str) else paper_value
            out.append(
                {
                    "table": table.id,
                    "row": row.id,
                    "label": row.label,
                    "column": column,
                    "task": task,
                    "metric": metric or "primary",
                    "mean": "" if stats is None else f"{stats.mean:.6g}",
                    "std": "" if stats is None or stats.std is None else f"{stats.std:.6g}",
                    "n": 0 if stats is None else stats.n,
                    "status": cell.status() if stats is None or cell.statuses else "ok",
                    "values": json.dumps({str(k): round(v, 6) for k, v in sorted(cell.values.items())}),
                    "paper": "" if paper_value is None else paper_value,
                    "difference": _signed(difference(stats, numeric)),
                    "params_inference": params,
                    "params_paper": row.paper_params or "",
                    "recipe_source": source,
                }
            )
    return out


def markdown(sheets: list[Sheet]) -> str:
    parts = []
    for page in sheets:
        lines = [f"## {page.title}", "", "| " + " | ".join(page.header) + " |"]
        lines.append("|" + "|".join("---" for _ in page.header) + "|")
        lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in page.rows]
        lines += ["", *(f"- {note}" for note in page.notes), ""]
        parts.append("\n".join(lines))
    return "\n".join(parts)


TEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
               "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "±": r"$\pm$", "Δ": r"$\Delta$",
               "−": "-", "–": "--", "†": r"$^\dagger$", "◇": r"$^\diamond$", "‡": r"$^\ddagger$"}  # fmt: skip


def tex_escape(text: str) -> str:
    return "".join(TEX_ESCAPES.get(char, char) for char in text)


def latex(sheets: list[Sheet]) -> str:
    parts = []
    for page in sheets:
        lines = [
            r"\begin{table}[t]",
            r"\centering\small",
            r"\begin{tabular}{l" + "r" * (len(page.header) - 1) + "}",
            r"\toprule",
            " & ".join(tex_escape(cell) for cell in page.header) + r" \\",
            r"\midrule",
            *(" & ".join(tex_escape(cell) for cell in row) + r" \\" for row in page.rows),
            r"\bottomrule",
            r"\end{tabular}",
            r"\caption{" + tex_escape(page.title) + ". " + tex_escape("; ".join(page.notes)) + "}",
            r"\end{table}",
        ]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def write(out: Path, name: str, sheets: list[Sheet], rows: list[dict[str, Any]]) -> list[Path]:
    """`<out>/<name>.md`, `.tex` and `.csv`."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.md", out / f"{name}.tex", out / f"{name}.csv"]
    paths[0].write_text(markdown(sheets), encoding="utf-8")
    paths[1].write_text(latex(sheets), encoding="utf-8")
    write_csv(paths[2], rows)
    return paths


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        fields = list(rows[0]) if rows else ["table"]
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return path
