"""What `adamix-report` writes for a declared baseline, which mutation testing (`make mutate`, docs/TESTING.md) found
unpinned: the differences table's header (with the average column only when the table has an average label), two
decimals for metrics in percent and for the average, three for the others, "n < 2" below two seeds on either side
(also for a row without runs) but not at two, the notes, and the differences CSV's columns, left empty below two
seeds."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from adamix_runner.report import cli, declaration
from adamix_runner.report.stats import paired

TABLE = {
    "id": "toy_cmp",
    "title": "a baseline over a percent and a loss column",
    "paper_table": None,
    "kind": "grid",
    "profiles": {"paper": {"model": "minilm"}},
    "tasks": ["rte", "mrpc"],
    "columns": {
        "rte": {"metric": "validation/accuracy", "label": "RTE"},
        "mrpc": {"metric": "validation/loss", "label": "MRPC loss"},
    },
    "average": {"label": "Avg.", "columns": ["rte"]},
    "seeds": 3,
    "baseline": [
        ["adamix", "adapter"],
        ["lora", "adapter"],
        ["adamix", "two"],
        ["paper", "adapter"],
        ["adamix", "paper"],
    ],
    "rows": [
        {"id": "adapter", "label": "Adapter", "match": {"peft.method": "adapter"}},
        {"id": "adamix", "label": "AdaMix", "match": {"peft.method": "adamix"}},
        {"id": "lora", "label": "LoRA", "match": {"peft.method": "lora"}},
        {"id": "two", "label": "Two seeds", "match": {"peft.method": "two"}},
        {"id": "paper", "label": "Paper only", "not_run": "no such method here"},
    ],
}
ACCURACY = {"adapter": [0.70, 0.69, 0.71], "adamix": [0.66, 0.665, 0.67], "lora": [0.71], "two": [0.69, 0.70]}
LOSS = {"adapter": [0.5213, 0.5507, 0.5032], "adamix": [0.4811, 0.4702, 0.4933], "lora": [0.5], "two": [0.52, 0.53]}


@pytest.fixture
def runs(tmp_path) -> Path:
    for method, values in ACCURACY.items():
        for task in ("rte", "mrpc"):
            for seed, accuracy in enumerate(values):
                config = {
                    "task": {"name": task},
                    "model": {"name": "minilm"},
                    "peft": {"method": method},
                    "seed": seed,
                }
                folder = tmp_path / "runs" / task / method / f"seed{seed}"
                folder.mkdir(parents=True)
                metrics = {"validation/accuracy": accuracy, "validation/loss": LOSS[method][seed]}
                record = {"status": "completed", "config": config, "metrics": metrics, "params": {"inference": 10}}
                (folder / "results.json").write_text(json.dumps(record | {"primary_metric": "validation/accuracy"}))
    return tmp_path


def report(table: dict, runs: Path, monkeypatch) -> tuple[list[str], dict]:
    monkeypatch.setattr(declaration, "load", lambda name, folder=None: table)
    out = runs / "out"
    cli.report([f"table={table['id']}", f"runs={runs}", f"out={out}"])
    page = (out / f"{table['id']}.md").read_text().split("differences from the baseline")[1]
    lines = [line for line in page.splitlines() if line.startswith("|")]
    with (out / f"{table['id']}-differences.csv").open() as handle:
        records = {(r["row"], r["baseline"], r["column"]): r for r in csv.DictReader(handle)}
    return lines, records


def test_the_differences_table_shows_percent_points_loss_to_three_decimals_and_the_average(runs, monkeypatch):
    lines, _ = report(TABLE, runs, monkeypatch)
    assert lines[0] == "| Comparison | RTE | MRPC loss | Avg. |"
    rte = paired([v * 100 for v in ACCURACY["adamix"]], [v * 100 for v in ACCURACY["adapter"]])
    loss = paired(LOSS["adamix"], LOSS["adapter"])
    mark = {True: "‡", False: ""}
    adamix = f"| AdaMix − Adapter | {rte.format(2)} paired{mark[rte.excludes_zero]} "
    adamix += (
        f"| {loss.format(3)} paired{mark[loss.excludes_zero]} | {rte.format(2)} paired{mark[rte.excludes_zero]} |"
    )
    assert adamix in lines
    assert "| LoRA − Adapter | n < 2 | n < 2 | n < 2 |" in lines  # one seed against three
    two = next(line for line in lines if line.startswith("| AdaMix − Two seeds |"))
    assert two.count("Welch") == 3 and "n < 2" not in two  # two seeds are enough (seeds 0-2 against 0-1: Welch)
    assert "| Paper only − Adapter | n < 2 | n < 2 | n < 2 |" in lines  # a row without runs, on either side
    assert "| AdaMix − Paper only | n < 2 | n < 2 | n < 2 |" in lines


def test_the_notes_say_what_each_test_and_mark_means(runs, monkeypatch):
    monkeypatch.setattr(declaration, "load", lambda name, folder=None: TABLE)
    cli.report([f"table={TABLE['id']}", f"runs={runs}", f"out={runs / 'out'}"])
    page = " ".join((runs / "out" / "toy_cmp.md").read_text().split())
    assert (
        "paired: a paired t (both cells have the same seeds, and each seed's two runs read the same data); Welch: "
        "Welch's t (unequal variances); n < 2: fewer than two seeds on a side"
    ) in page
    assert "one comparison at a time: no correction for the number of comparisons)" in page


def test_without_an_average_label_the_differences_table_has_no_average_column(runs, monkeypatch):
    lines, _ = report({**TABLE, "average": None}, runs, monkeypatch)
    assert lines[0] == "| Comparison | RTE | MRPC loss |"
    rte = paired([v * 100 for v in ACCURACY["adamix"]], [v * 100 for v in ACCURACY["adapter"]])
    loss = paired(LOSS["adamix"], LOSS["adapter"])
    mark = {True: "‡", False: ""}
    cells = f"{rte.format(2)} paired{mark[rte.excludes_zero]} | {loss.format(3)} paired{mark[loss.excludes_zero]}"
    assert lines[2] == f"| AdaMix − Adapter | {cells} |"


def test_the_differences_csv_names_its_columns_and_leaves_them_empty_below_two_seeds(runs, monkeypatch):
    _, records = report(TABLE, runs, monkeypatch)
    loss = paired(LOSS["adamix"], LOSS["adapter"])
    found = records["adamix", "adapter", "mrpc"]
    assert found["table"] == "toy_cmp" and found["test"] == "paired"
    assert float(found["difference"]) == pytest.approx(loss.difference, rel=1e-5)
    assert float(found["high"]) == pytest.approx(loss.high, rel=1e-5)
    assert found["df"] == "2"  # a paired t over three seeds has n - 1 degrees of freedom
    short = records["lora", "adapter", "rte"]
    assert (short["difference"], short["low"], short["high"], short["df"], short["test"]) == ("", "", "", "", "n < 2")
    assert short["excludes_zero"] == "" and short["table"] == "toy_cmp"
