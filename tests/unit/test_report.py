"""adamix-report on synthetic run folders: aggregation, the paper's average convention, missing / failed / not-run
cells, inference tables, sweeps, the files and figures written, and that the training stack is never imported."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from adamix_runner.report import cli, declaration, grid, paper, sweep
from adamix_runner.report.aggregate import SeedValues, average, summarize
from adamix_runner.report.runs import scan
from adamix_runner.tables import declaration as tables_declaration

TABLE = {
    "id": "toy1",
    "title": "toy GLUE table",
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
    "recipes": {"rte": {"overrides": [], "source": "ours: LoRA-repo stand-in"}},
    "rows": [
        {
            "id": "adamix",
            "label": "AdaMix",
            "paper_row": "AdaMix",
            "overrides": ["peft=adamix", "peft.adapter_dim=16"],
            "match": {"peft.method": "adamix", "peft.adapter_dim": 16},
            "source": "paper",
        },
        {
            "id": "lora",
            "label": "LoRA",
            "paper_row": "LoRA†",
            "overrides": ["peft=lora"],
            "match": {"peft.method": "lora"},
            "source": "paper",
        },
        {"id": "unipelt", "label": "UniPELT", "paper_row": None, "not_run": "no UniPELT method"},
    ],
}


def make_run(root: Path, task: str, method: str, seed: int, status="completed", metrics=None, **extra) -> Path:
    """A run folder as adamix-run leaves it (results.json, metrics.jsonl), with the config keys the report reads."""
    model = extra.pop("model", "roberta-large")
    peft = {"method": method, "adapter_dim": extra.pop("adapter_dim", 16), "num_experts": extra.pop("experts", 4)}
    peft["inference"] = "merge"
    config = {"task": {"name": task}, "model": {"name": model}, "peft": peft, "seed": seed, "output_root": str(root)}
    folder = root / "runs" / task / model / method / f"h{peft['adapter_dim']}x{peft['num_experts']}" / f"seed{seed}"
    folder.mkdir(parents=True)
    (folder / ".hydra").mkdir()
    OmegaConf.save(OmegaConf.create(config), folder / ".hydra" / "config.yaml")
    # a failed run's record has no config (run.record_failure): the report finds it through .hydra/config.yaml
    record = {"status": status, "error": "RuntimeError: boom", "config_hash": "h"}
    if status == "completed":
        record = {"status": status, "config": config, "primary_metric": "validation/accuracy", "seed": seed}
        record |= {"metrics": metrics, "params": {"inference": 811392, "trainable": 1, "backbone": 2}}
        record |= {"timing": {"train_s": 10.0}}
    (folder / "results.json").write_text(json.dumps(record))
    (folder / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "train/loss": 1 / s}) + "\n" for s in (1, 2)))
    for name, values in extra.get("evaluations", {}).items():
        (folder / "evaluations").mkdir(exist_ok=True)
        (folder / "evaluations" / f"{name}.json").write_text(json.dumps({"rule": name, "metrics": values}))
    return folder


def acc(value: float) -> dict[str, float]:
    return {"validation/accuracy": value}


@pytest.fixture
def runs(tmp_path):
    root = tmp_path / "out"
    for seed, (rte, mrpc) in enumerate([(0.80, 0.90), (0.82, 0.91), (0.84, 0.95)]):
        make_run(root, "rte", "adamix", seed, metrics=acc(rte))
        make_run(root, "mrpc", "adamix", seed, metrics=acc(mrpc))
    make_run(root, "rte", "adamix", 0, model="tiny-roberta", metrics=acc(0.1))  # another profile's run
    make_run(root, "rte", "adamix", 1, adapter_dim=8, metrics=acc(0.2))  # another row's run
    make_run(root, "rte", "lora", 0, metrics=acc(0.70))
    make_run(root, "rte", "lora", 1, metrics=acc(0.74))
    make_run(root, "rte", "lora", 2, status="failed")
    make_run(root, "mrpc", "lora", 0, status="failed")
    return root


def test_summarize_is_mean_sample_std_and_n():
    stats = summarize([80.0, 82.0, 84.0])
    assert (stats.mean, stats.std, stats.n) == (82.0, 2.0, 3)
    assert stats.format() == "82.00 ± 2.00 (3)"
    assert summarize([70.0]).format() == "70.00 (1)"
    assert summarize([]) is None


def test_cells_aggregate_seeds_of_their_row_task_and_profile_model(runs):
    table = grid.build(TABLE, scan(runs))
    adamix, lora, unipelt = table.rows
    rte = adamix.cells["rte"].stats
    assert (rte.mean, rte.n) == (pytest.approx(82.0), 3)
    assert rte.std == pytest.approx(2.0)
    assert adamix.cells["mrpc"].values == pytest.approx({0: 90.0, 1: 91.0, 2: 95.0})
    assert adamix.params == [811392]
    assert lora.cells["rte"].format() == "72.00 ± 2.83 (2) [1 failed]"
    assert lora.cells["mrpc"].format() == "failed"
    assert unipelt.cells["rte"].format() == "not run"
    smoke = grid.build(TABLE, scan(runs), profile="smoke")
    assert smoke.rows[0].cells["rte"].values == pytest.approx({0: 10.0})
    assert smoke.rows[0].cells["mrpc"].format() == "missing"


def test_eval_only_runs_are_not_cells_and_rows_without_match_are_refused(runs):
    evaluation = make_run(runs / "elsewhere", "rte", "adamix", 0, metrics=acc(0.99))
    record = json.loads((evaluation / "results.json").read_text())
    record["config"]["eval_only"] = True
    (evaluation / "results.json").write_text(json.dumps(record))
    assert grid.build(TABLE, scan(runs)).rows[0].cells["rte"].values[0] == pytest.approx(80.0)
    broken = {**TABLE, "rows": [{"id": "lost", "label": "Lost"}]}
    with pytest.raises(Exception, match="row lost: no `match`"):
        grid.build(broken, scan(runs))


def test_the_average_is_per_seed_over_complete_columns_and_the_paper_is_beside_it(runs):
    adamix, lora, _ = grid.build(TABLE, scan(runs)).rows
    assert adamix.average.values == pytest.approx({0: 85.0, 1: 86.5, 2: 89.5})
    assert lora.average.format() == "incomplete"
    assert (adamix.paper["rte"], adamix.paper["mrpc"], adamix.paper_params) == (89.2, 91.9, "0.8M")
    assert adamix.paper_average == 89.9
    assert average([SeedValues(values={0: 1.0, 1: 2.0}), SeedValues(values={1: 4.0})]).values == {1: 3.0}


@pytest.mark.parametrize(
    ("table", "convention"),
    [("table1", {"qqp": "accuracy", "mrpc": "accuracy"}), ("table2", {"qqp": "f1", "mrpc": "f1"})],
)
def test_the_papers_averages_follow_its_convention(table, convention):
    """Table 1 averages accuracy for QQP and MRPC, Table 2 F1 (adamix-method.md §7.1-7.2); a printed average that
    is not the mean of its printed cells carries a note."""
    data = paper.load()[table]
    assert data["average"]["metrics"] == convention
    for row in data["rows"]:
        cells = [next(iter(v.values())) if len(v) == 1 else v[convention[t]] for t, v in row["results"].items()]
        mean = sum(cells) / len(cells)
        assert ("avg_note" in row) == (abs(mean - row["avg"]) > 0.051), row["label"]


def test_paper_rows_are_found_by_label_and_size_and_unknown_ones_are_refused():
    assert paper.row("table1", "Pfeiffer Adapter† (0.8M)")["avg"] == 87.9
    assert paper.row("table2", "UniPELT (AP)")["params"] == "1.1M"
    assert paper.row("table7", "AdaMix") is None
    with pytest.raises(Exception, match="is not a row of the paper's table1; its rows: Fine-tuning†"):
        paper.row("table1", "AdaMix Adapter")
    assert paper.format_params(811392, 1) == "0.8M" and paper.format_params(393216, 2) == "0.39M"


def _inference(table_id: str, **keys) -> dict:
    """An inference table over TABLE's runs with every key the declaration contract requires."""
    return (
        {"id": table_id, "title": f"{table_id} over toy1", "kind": "inference", "from": "toy1", "rows": []}
        | {key: TABLE[key] for key in ("profiles", "tasks", "columns")}
        | keys
    )


def _write_tables(folder: Path, *tables: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for table in tables:
        OmegaConf.save(OmegaConf.create(table), folder / f"{table['id']}.yaml")
    return folder


def test_the_report_writes_md_csv_tex_and_curves(runs, tmp_path, monkeypatch):
    monkeypatch.setattr(tables_declaration, "TABLE_DIR", _write_tables(tmp_path / "tables", TABLE))
    written = cli.report(["table=toy1", f"runs={runs}"])
    assert [p.name for p in written] == ["toy1.md", "toy1.tex", "toy1.csv", "toy1-curves.png"]
    assert written[0].parent == runs / "reports"
    md = written[0].read_text()
    assert "| AdaMix | 0.8M | 82.00 ± 2.00 (3)* | 92.00 ± 2.65 (3) | 87.00 ± 2.29 (3) | ours+paper |" in md
    assert "|   paper | 0.8M | 89.2 | 91.9 | 89.9 |  |" in md
    assert "|   Δ (ours − paper) |  | -7.20 | +0.10 | -2.90 |  |" in md
    assert "| UniPELT |  | not run | not run | incomplete | not run: no UniPELT method |" in md
    assert "recipe of RTE: ours: LoRA-repo stand-in" in md
    tex = written[1].read_text()
    assert r"\begin{tabular}{lrrrrr}" in tex and r"82.00 $\pm$ 2.00 (3)" in tex
    rows = list(csv.DictReader(written[2].open()))
    assert len(rows) == 3 * 3  # 3 rows x (2 columns + the average)
    lora_mrpc = next(r for r in rows if r["row"] == "lora" and r["column"] == "mrpc")
    assert (lora_mrpc["status"], lora_mrpc["n"], lora_mrpc["paper"]) == ("failed", "0", "90.2")
    drawn = json.loads(written[3].with_suffix(".json").read_text())["panels"]  # what the curves PNG shows
    assert drawn == {
        "RTE": {"AdaMix": [[1, 1.0], [2, 0.5]], "LoRA": [[1, 1.0], [2, 0.5]]},
        "MRPC": {"AdaMix": [[1, 1.0], [2, 0.5]]},
    }


def test_inference_tables_read_evaluations_and_draw_the_violin(tmp_path, monkeypatch):
    root = tmp_path / "out"
    for seed in range(2):
        evaluations = {f"random-seed{k}": acc(0.80 + 0.01 * k + seed / 100) for k in range(3)}
        evaluations["fixed-expert0"] = acc(0.70)
        make_run(root, "rte", "adamix", seed, metrics=acc(0.85), evaluations=evaluations)
    make_run(root, "mrpc", "adamix", 0, metrics=acc(0.9))
    figure = _inference("fig5", paper_table="figure5", rows_from=["adamix"])
    figure |= {"rules": ["merge", "random", "fixed"], "random_eval_seeds": 3, "seeds": 2}
    monkeypatch.setattr(tables_declaration, "TABLE_DIR", _write_tables(tmp_path / "tables", TABLE, figure))
    table = grid.build(declaration.load("fig5"), scan(root))
    merge, random, fixed = table.rows
    assert [row.id for row in table.rows] == ["adamix:merge", "adamix:random", "adamix:fixed"]
    assert merge.cells["rte"].values == pytest.approx({0: 85.0, 1: 85.0})
    assert random.cells["rte"].values == pytest.approx({0: 81.0, 1: 82.0})
    assert fixed.cells["rte"].values == pytest.approx({0: 70.0, 1: 70.0})
    assert random.cells["mrpc"].format() == "not evaluated"
    assert (merge.paper["rte"], random.paper["rte"]) == (89.2, "87.4–89.9")  # roberta-large's Figure 5 reading
    written = cli.report(["table=fig5", f"runs={root}", f"out={tmp_path / 'rep'}"])
    assert [p.name for p in written][-1] == "fig5-violin.png"
    drawn = json.loads(written[-1].with_suffix(".json").read_text())["tasks"]["RTE"]
    assert sorted(drawn["random routing"]) == pytest.approx([80.0, 81.0, 81.0, 82.0, 82.0, 83.0])
    assert drawn["AdaMix (merged)"] == pytest.approx([85.0])


def test_the_experts_rule_is_the_mean_of_every_single_expert_and_needs_them_all(tmp_path, monkeypatch):
    root = tmp_path / "out"
    make_run(
        root,
        "rte",
        "adamix",
        0,
        metrics=acc(0.85),
        evaluations={f"fixed-expert{i}": acc(0.6 + i / 10) for i in range(4)},
    )
    make_run(root, "rte", "adamix", 1, metrics=acc(0.85), evaluations={f"fixed-expert{i}": acc(0.7) for i in range(3)})
    rules = _inference("rules", rows_from=["adamix"], rules=["experts"])
    monkeypatch.setattr(
        tables_declaration, "TABLE_DIR", _write_tables(tmp_path / "tables", TABLE, rules | {"seeds": 2})
    )
    (experts,) = grid.build(declaration.load("rules"), scan(root)).rows
    assert experts.cells["rte"].values == pytest.approx({0: 75.0})  # (60 + 70 + 80 + 90) / 4; seed 1 lacks expert 3
    assert experts.label == "single expert (mean over the experts)"


def test_a_user_sweep_is_grouped_by_its_differing_keys_with_a_heatmap(tmp_path):
    root = tmp_path / "sweep"
    for dim in (8, 16):
        for experts in (1, 4):
            for seed in range(2):
                make_run(
                    root, "rte", "adamix", seed, adapter_dim=dim, experts=experts, metrics=acc(dim / 100 + experts)
                )
    runs = scan(root)
    assert sweep.differing_keys(runs) == ["peft.adapter_dim", "peft.num_experts"]
    assert sweep.heatmaps(runs) == {"": pytest.approx({(8, 1): 108.0, (8, 4): 408.0, (16, 1): 116.0, (16, 4): 416.0})}
    written = cli.report(["sweep", f"runs={root}", "name=dims"])
    assert [p.name for p in written] == ["dims.md", "dims.tex", "dims.csv", "dims-curves.png", "dims-heatmap.png"]
    md = written[0].read_text()
    assert "| 16 | 4 | validation/accuracy | 416.00 ± 0.00 (2) | 811,392 | 10.0 |" in md
    assert md.index("| 8 | 1 |") < md.index("| 8 | 4 |") < md.index("| 16 | 1 |")  # numbers in numeric order
    drawn = json.loads(written[-1].with_suffix(".json").read_text())
    assert drawn["values"] == [pytest.approx([108.0, 408.0]), pytest.approx([116.0, 416.0])]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["tabel=1"], "unknown argument 'tabel=1'"),
        ([], "say which table"),
        (["table=42"], "no table 'table42' (no table42.yaml in conf/table); declared tables: toy1"),
        (["sweep"], "sweep needs runs="),
        (["table=toy1", "seeds=0"], "seeds=0 must be a positive integer"),
        (["table=toy1", "profile=gpu"], "table toy1 has no profile 'gpu'; it has: paper, smoke"),
    ],
)
def test_bad_arguments_are_one_line_errors(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(tables_declaration, "TABLE_DIR", _write_tables(tmp_path / "tables", TABLE))
    with pytest.raises(SystemExit) as stop:
        cli.main([*argv, f"runs={tmp_path}"] if argv and argv[0] != "sweep" else argv)
    assert stop.value.code == 2
    assert message in capsys.readouterr().err


def test_the_report_never_imports_the_training_stack(runs, tmp_path):
    tables = _write_tables(tmp_path / "tables", TABLE)
    code = (
        "import sys\n"
        "from adamix_runner.report import cli\n"
        "from adamix_runner.tables import declaration\n"
        f"declaration.TABLE_DIR = __import__('pathlib').Path({str(tables)!r})\n"
        f"cli.report(['table=toy1', 'runs={runs}'])\n"
        f"cli.report(['sweep', 'runs={runs}'])\n"
        "heavy = [m for m in ('torch', 'transformers', 'accelerate', 'datasets', 'adamix_runner.run',\n"
        "         'adamix_runner.pipelines', 'adamix_runner.training') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_declared_tables_name_rows_of_the_papers_data():
    """Every `paper_row` of conf/table/*.yaml is a row of paper_results.yaml (no-op until tables are declared)."""
    for name in declaration.table_ids():
        table = declaration.load(name)
        for row in table.get("rows") or []:
            paper.row(table.get("paper_table"), row.get("paper_row"))


def test_also_metrics_become_columns_and_inference_rows_may_name_their_rule():
    table = {
        "columns": {
            "qqp": {"metric": "validation/accuracy", "also": ["validation/f1"], "label": "QQP"},
            "e2e": {"metric": "test/bleu", "also": ["test/nist"], "label": "BLEU"},
        }
    }
    found = [(c.id, c.task, c.metric, c.label) for c in declaration.columns(table)]
    assert found == [
        ("qqp", "qqp", "validation/accuracy", "QQP"),
        ("qqp:f1", "qqp", "validation/f1", "QQP F1"),
        ("e2e", "e2e", "test/bleu", "BLEU"),
        ("e2e:nist", "e2e", "test/nist", "NIST"),
    ]
    assert paper.value(paper.row("table1", "AdaMix"), "qqp", "validation/f1") == 89.8
    declared = {"rows": [{"id": "m", "label": "Weight averaging", "rule": "merge"}], "rules": ["random"]}
    assert grid.rules(declared) == [("merge", "Weight averaging")]
    assert grid.rules({"rules": ["random"]}) == [("random", "random routing")]
