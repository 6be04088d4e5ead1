"""What `adamix-report` shows, on run folders in the exact formats the runner writes them (run.py: the completed
record with its resolved config; `record_failure`'s and the interrupted record, which carry no config, beside
.hydra/config.yaml): which run a cell uses when it has several, failed and interrupted seeds, CoLA / STS-B in %,
Table 2's F1 average, and the values the figures draw (read back from the JSON beside each PNG)."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from adamix_runner.errors import UserError
from adamix_runner.report import cli, declaration, grid, paper
from adamix_runner.report.aggregate import average, scale
from adamix_runner.report.runs import scan
from adamix_runner.tables import declaration as tables_declaration

ADAMIX = {"method": "adamix", "adapter_dim": 16, "num_experts": 4, "inference": "merge"}


def config(task: str, seed: int, model: str = "roberta-large", **peft) -> dict:
    return {"task": {"name": task}, "model": {"name": model}, "peft": {**ADAMIX, **peft}, "seed": seed}


def write_run(
    root: Path,
    cfg: dict,
    status: str = "completed",
    metrics: dict | None = None,
    tag: str = "h0",
    age: float | None = None,
    curve: list[tuple[int, float]] = (),
    evaluations: dict | None = None,
) -> Path:
    """A run folder as run.py leaves it; `age` (seconds before now) sets results.json's mtime."""
    folder = root / "runs" / cfg["task"]["name"] / cfg["model"]["name"] / cfg["peft"]["method"] / tag
    folder = folder / f"seed{cfg['seed']}"
    (folder / ".hydra").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create(cfg), folder / ".hydra" / "config.yaml")
    if status == "completed":
        record = {
            "status": "completed",
            "seed": cfg["seed"],
            "metrics": metrics,
            "primary_metric": "validation/accuracy",
            "params": {"trainable": 3, "inference": 811_392, "backbone": 2},
            "timing": {"train_s": 1.0},
            "config": cfg,
            "config_hash": tag,
        }
    elif status == "failed":  # run.record_failure
        record = {"status": "failed", "error": "RuntimeError: boom", "config_hash": tag}
    else:  # run.run's Interrupted branch
        record = {"status": status, "step": 3, "checkpoint": None, "error": "stopped", "config_hash": tag}
    results = folder / "results.json"
    results.write_text(json.dumps(record))
    rows = [{"step": step, "train/loss": value} for step, value in curve]
    rows += [{"step": -1, "train/loss": 9.0}, {"step": 5, "validation/loss": 7.0}]  # not training steps / keys
    (folder / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    for name, values in (evaluations or {}).items():
        (folder / "evaluations").mkdir(exist_ok=True)
        (folder / "evaluations" / f"{name}.json").write_text(json.dumps({"rule": name, "metrics": values}))
    if age is not None:
        stamp = results.stat().st_mtime - age
        os.utime(results, (stamp, stamp))
    return folder


def acc(value: float) -> dict[str, float]:
    return {"validation/accuracy": value}


ADAMIX_ROW = {
    "id": "adamix",
    "label": "AdaMix",
    "paper_row": "AdaMix",
    "overrides": ["peft=adamix"],
    "match": {"peft.method": "adamix"},
}
TOY = {
    "id": "toyb",
    "title": "toy table",
    "paper_table": "table1",
    "kind": "grid",
    "profiles": {"paper": {"model": "roberta-large"}, "smoke": {"model": "tiny-roberta"}},
    "tasks": ["rte", "mrpc"],
    "columns": {
        "rte": {"metric": "validation/accuracy", "label": "RTE"},
        "mrpc": {"metric": "validation/accuracy", "label": "MRPC"},
    },
    "average": {"label": "Avg.", "columns": ["rte", "mrpc"]},
    "seeds": 3,
    "rows": [ADAMIX_ROW],
}


def _declare(folder: Path, monkeypatch, *tables: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for table in tables:
        OmegaConf.save(OmegaConf.create(table), folder / f"{table['id']}.yaml")
    monkeypatch.setattr(tables_declaration, "TABLE_DIR", folder)


def _cell(root: Path, table: dict = TOY, column: str = "rte", profile: str = "paper"):
    return grid.build(table, scan(root), profile).rows[0].cells[column]


def test_of_several_runs_of_a_cell_and_seed_the_newest_completed_one_counts(tmp_path):
    root = tmp_path / "out"
    write_run(root, config("rte", 0), metrics=acc(0.60), tag="old", age=100)
    write_run(root, config("rte", 0), metrics=acc(0.70), tag="new", age=10)
    assert _cell(root).values == pytest.approx({0: 70.0})
    write_run(root, config("rte", 0), status="failed", tag="newest-failed", age=1)
    write_run(root, config("rte", 0), status="interrupted", tag="newest-interrupted", age=0)
    assert _cell(root).values == pytest.approx({0: 70.0})  # a later failure does not hide a result
    os.utime(root / "runs/rte/roberta-large/adamix/old/seed0/results.json")  # the older run, rewritten now
    assert _cell(root).values == pytest.approx({0: 60.0})


def test_failed_and_interrupted_seeds_as_the_runner_writes_them(tmp_path, monkeypatch):
    root = tmp_path / "out"
    write_run(root, config("rte", 0), metrics=acc(0.80))
    write_run(root, config("rte", 1), status="failed")
    write_run(root, config("rte", 2), status="interrupted")
    write_run(root, config("mrpc", 0), status="interrupted")
    write_run(root, config("mrpc", 1), status="failed")
    assert _cell(root).format() == "80.00 (1) [1 failed]"
    assert _cell(root, column="mrpc").format() == "failed"  # failed says more than interrupted, in any seed order
    write_run(root / "only-interrupted", config("rte", 0), status="interrupted")
    assert _cell(root / "only-interrupted").format() == "interrupted"
    _declare(tmp_path / "tables", monkeypatch, TOY)
    written = cli.report(["table=toyb", f"runs={root}", f"out={tmp_path / 'rep'}"])
    rows = {r["column"]: r for r in csv.DictReader(next(p for p in written if p.suffix == ".csv").open())}
    assert (rows["rte"]["n"], rows["mrpc"]["status"], rows["mrpc"]["n"]) == ("1", "failed", "0")


STSB_COLA = {
    "id": "glue2",
    "title": "CoLA and STS-B",
    "paper_table": "table2",
    "kind": "grid",
    "profiles": {"paper": {"model": "bert-base"}},
    "tasks": ["cola", "stsb"],
    "columns": {
        "cola": {"metric": "validation/matthews", "label": "CoLA"},
        "stsb": {"metric": "validation/pearson", "also": ["validation/spearman"], "label": "STS-B"},
    },
    "seeds": 3,
    "rows": [ADAMIX_ROW],
}


def test_cola_and_stsb_are_reported_in_percent_against_the_papers_numbers(tmp_path, monkeypatch):
    root = tmp_path / "out"
    for seed, matthews in enumerate((0.60, 0.63, 0.66)):
        write_run(root, config("cola", seed, "bert-base"), metrics={"validation/matthews": matthews})
    for seed, (pearson, spearman) in enumerate([(0.890, 0.88), (0.895, 0.89)]):
        metrics = {"validation/pearson": pearson, "validation/spearman": spearman}
        write_run(root, config("stsb", seed, "bert-base"), metrics=metrics)
    (row,) = grid.build(STSB_COLA, scan(root)).rows
    assert row.cells["cola"].values == pytest.approx({0: 60.0, 1: 63.0, 2: 66.0})
    assert row.cells["stsb"].values == pytest.approx({0: 89.0, 1: 89.5})
    assert row.cells["stsb:spearman"].values == pytest.approx({0: 88.0, 1: 89.0})
    _declare(tmp_path / "tables", monkeypatch, STSB_COLA)
    written = cli.report(["table=glue2", f"runs={root}", f"out={tmp_path / 'rep'}"])
    rows = {r["column"]: r for r in csv.DictReader(next(p for p in written if p.suffix == ".csv").open())}
    shown = {column: (r["mean"], r["std"], r["n"], r["paper"], r["difference"]) for column, r in rows.items()}
    assert shown == {
        "cola": ("63", "3", "3", "62.9", "+0.10"),
        "stsb": ("89.25", "0.353553", "2", "89.9", "-0.65"),
        "stsb:spearman": ("88.5", "0.707107", "2", "", ""),
    }
    assert "63.00 ± 3.00 (3)" in written[0].read_text()


def test_every_declared_average_uses_the_metric_of_its_papers_convention():
    """Table 1 averages accuracy for QQP and MRPC, Table 2 F1 (paper_results.yaml `average.metrics`); a table that
    reuses a paper table's numbers must average the same metric, else its Avg. and Δ compare different things."""
    checked = 0
    for name in declaration.table_ids():
        table = declaration.load(name)
        convention = (paper.load().get(table.get("paper_table") or "", {}).get("average") or {}).get("metrics")
        if not table.get("average") or not convention:
            continue
        for column in table["average"].get("columns", table["tasks"]):
            if column in convention:
                assert table["columns"][column]["metric"].split("/")[-1] == convention[column], (name, column)
                checked += 1
    assert checked >= 4  # table1 and table2, QQP and MRPC each


# The audit's hand computation (tests-and-readme-audit.md Part 2): AdaMix in Table 2 (smoke profile: tiny-bert).
TABLE2_ADAMIX = {
    "mnli": [{"validation_matched/accuracy": v} for v in (0.840, 0.850, 0.860)],
    "qnli": [acc(v) for v in (0.910, 0.915, 0.920)],
    "sst2": [acc(v) for v in (0.920, 0.924, 0.928)],
    "qqp": [{"validation/f1": f, "validation/accuracy": a} for f, a in [(0.870, 0.9), (0.876, 0.91), (0.882, 0.92)]],
    "mrpc": [{"validation/f1": f, "validation/accuracy": a} for f, a in [(0.90, 0.88), (0.92, 0.89), (0.94, 0.90)]],
    "cola": [{"validation/matthews": v} for v in (0.600, 0.630, 0.660)],
    "rte": [acc(v) for v in (0.700, 0.750, 0.800)],
    "stsb": [{"validation/pearson": v} for v in (0.890, 0.895)],  # seed 2 has no STS-B run
}


def test_table2s_average_is_per_seed_over_the_eight_tasks_with_f1_for_qqp_and_mrpc(tmp_path):
    root = tmp_path / "out"
    for task, per_seed in TABLE2_ADAMIX.items():
        for seed, metrics in enumerate(per_seed):
            cfg = config(task, seed, "tiny-bert", adapter_dim=48, share="up")
            write_run(root, cfg, metrics=metrics)
    table = grid.build(declaration.load("table2"), scan(root), "smoke")
    adamix = next(row for row in table.rows if row.id == "adamix_adapter")
    # seed 0: (84 + 91 + 92 + 87 + 90 + 60 + 70 + 89) / 8; seed 1: (85 + 91.5 + 92.4 + 87.6 + 92 + 63 + 75 + 89.5) / 8
    assert adamix.average.values == pytest.approx({0: 82.875, 1: 84.5})
    stats = adamix.average.stats
    assert (stats.mean, stats.std, stats.n) == (pytest.approx(83.6875), pytest.approx(1.149049), 2)
    assert adamix.paper_average == 84.5
    assert adamix.cells["qqp:accuracy"].stats.mean == pytest.approx(91.0)  # shown, but not averaged
    assert adamix.cells["mrpc"].stats.std == pytest.approx(2.0)


def test_the_curves_figure_draws_each_rows_training_loss(tmp_path, monkeypatch):
    root = tmp_path / "out"
    write_run(root, config("rte", 0), metrics=acc(0.8), curve=[(1, 0.9), (2, 0.7), (3, 0.6)])
    write_run(root, config("rte", 1), metrics=acc(0.8), curve=[(1, 5.0)])
    write_run(root, config("mrpc", 0), status="failed")
    _declare(tmp_path / "tables", monkeypatch, TOY)
    written = cli.report(["table=toyb", f"runs={root}", f"out={tmp_path / 'rep'}"])
    figure = next(p for p in written if p.name == "toyb-curves.png")
    drawn = json.loads(figure.with_suffix(".json").read_text())
    assert drawn["key"] == "train/loss"
    assert drawn["panels"] == {"RTE": {"AdaMix": [[1, 0.9], [2, 0.7], [3, 0.6]]}}  # MRPC: no completed run


def test_the_violin_draws_every_random_routing_evaluation_and_the_merged_mean(tmp_path, monkeypatch):
    root = tmp_path / "out"
    for seed in range(2):
        evaluations = {f"random-seed{k}": acc(0.80 + 0.01 * k + seed / 100) for k in range(3)}
        evaluations["random-seed3"] = acc(0.1)  # beyond random_eval_seeds: not drawn
        evaluations["merge"] = acc(0.85 + seed / 100)
        write_run(root, config("rte", seed), metrics=acc(0.5), evaluations=evaluations)
    figure = {"id": "fig5b", "title": "fig5b over toyb", "kind": "inference", "from": "toyb", "rows": []}
    figure |= {key: TOY[key] for key in ("profiles", "tasks", "columns")}
    figure |= {"paper_table": "figure5", "rows_from": ["adamix"]}
    figure |= {"rules": ["merge", "random"], "random_eval_seeds": 3, "seeds": 2}
    _declare(tmp_path / "tables", monkeypatch, TOY, figure)
    written = cli.report(["table=fig5b", f"runs={root}", f"out={tmp_path / 'rep'}"])
    drawn = json.loads(next(p for p in written if p.name == "fig5b-violin.png").with_suffix(".json").read_text())
    rte = drawn["tasks"]["RTE"]
    assert sorted(rte["random routing"]) == pytest.approx([80.0, 81.0, 81.0, 82.0, 82.0, 83.0])
    assert rte["AdaMix (merged)"] == pytest.approx([85.5])
    assert rte["paper: random range"] == [87.4, 89.9] and rte["paper: AdaMix"] == [89.2]
    assert drawn["tasks"]["MRPC"]["random routing"] == []  # no evaluations: no points


def test_the_sweep_heatmap_draws_the_mean_of_each_group(tmp_path):
    root = tmp_path / "sweep"
    for dim in (8, 16):
        for experts in (2, 4):
            for seed in range(2):
                value = dim / 100 + experts / 10 + seed / 1000
                cfg = config("rte", seed, adapter_dim=dim, num_experts=experts)
                write_run(root, cfg, metrics=acc(value), tag=f"d{dim}m{experts}", curve=[(1, value)])
    written = cli.report(["sweep", f"runs={root}", "name=dims"])
    drawn = json.loads(next(p for p in written if p.name == "dims-heatmap.png").with_suffix(".json").read_text())
    assert (drawn["peft.adapter_dim"], drawn["peft.num_experts"]) == ([8, 16], [2, 4])
    assert drawn["values"] == [pytest.approx([28.05, 48.05]), pytest.approx([36.05, 56.05])]
    curves = json.loads(next(p for p in written if p.name == "dims-curves.png").with_suffix(".json").read_text())
    labels = {f"adapter_dim={dim}, num_experts={m}" for dim in (8, 16) for m in (2, 4)}
    assert set(curves["panels"]["rte"]) == labels


def test_glue_fractions_are_scaled_to_percent_and_every_other_metric_is_shown_as_it_is():
    assert scale("validation/accuracy") == scale("validation_matched/accuracy") == scale("test/matthews") == 100.0
    assert scale("f1") == 100.0  # the last part of the name decides
    assert scale("validation/loss") == scale("test/bleu") == scale("test/ter") == 1.0
    assert average([]).format() == "incomplete"


def test_a_curve_is_the_training_steps_of_its_key_and_nothing_else(tmp_path):
    folder = write_run(tmp_path / "out", config("rte", 0), metrics=acc(0.8))
    rows = [{"step": 0, "train/loss": 2.0}, {"train/loss": 5.0}, {"step": 1, "train/loss": 1.5}, {"step": -1, "x": 1}]
    lines = [json.dumps(row) for row in rows]
    (folder / "metrics.jsonl").write_text("\n".join([*lines[:2], "", *lines[2:]]) + "\n")  # with a blank line
    (run,) = scan(tmp_path / "out")
    assert run.curve() == [(0, 2.0), (1, 1.5)]  # no step (not a training row) and blank lines are skipped
    assert run.get("peft.num_experts") == 4 and run.get("peft.missing", "default") == "default"


def test_a_corrupt_results_file_is_named_in_a_one_line_error(tmp_path):
    folder = write_run(tmp_path / "out", config("rte", 0), metrics=acc(0.8))
    (folder / "results.json").write_text("{not json")
    with pytest.raises(UserError, match=r"results.json is not valid JSON \(.*\); remove or restore it\.$"):
        scan(tmp_path / "out")


def test_sparse_records_read_as_a_word_not_a_crash(tmp_path):
    root = tmp_path / "out"
    bare = write_run(root, config("rte", 0), metrics=acc(0.8))
    (bare / "results.json").write_text(json.dumps({"status": "completed", "config": config("rte", 0)}))
    assert _cell(root).format() == "no metric"  # completed without metrics (e.g. a planner's stand-in)
    (bare / "results.json").write_text(json.dumps({"config": config("rte", 0)}))
    assert _cell(root).format() == "missing"  # no status at all
    early = write_run(root, config("mrpc", 0), status="failed")
    (early / ".hydra" / "config.yaml").unlink()  # failed in validate(), before the folder had its config
    assert scan(root)[0].config == {}
    late = write_run(root / "env", config("rte", 1, path="${oc.env:ADAMIX_TEST_UNSET}"), status="failed")
    assert scan(root / "env")[0].folder == late  # read as written, interpolations left unresolved
    assert _cell(root / "env").format() == "failed"


def test_any_folder_of_run_folders_is_scanned_and_a_missing_one_says_what_to_pass(tmp_path):
    root = tmp_path / "out"
    write_run(root, config("rte", 0), metrics=acc(0.8))
    (bare,) = scan(root / "runs" / "rte")  # a folder of run folders, no runs/ in it
    record = json.loads((bare.folder / "results.json").read_text())
    record.pop("timing")
    (bare.folder / "results.json").write_text(json.dumps(record))
    # no timing: no "train s"
    assert "| 80.00 (1) | 811,392 |  |" in cli.report(["sweep", f"runs={root}"])[0].read_text()
    with pytest.raises(UserError, match=r"does not exist; pass the output root of the runs \(e.g. runs=outputs\)"):
        scan(tmp_path / "nowhere")
