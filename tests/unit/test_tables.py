"""The table declarations (conf/table), their expansion into runs, the PLAN estimate, and the make targets.

The #Param check dry-runs each row of Tables 1-3 with model.pretrained=false (meta device, no download) and
compares params.inference with the paper's printed #Param, within the paper's rounding (method reference §7-§8).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from adamix_runner.config.compose import compose_config
from adamix_runner.errors import UserError
from adamix_runner.run import run
from adamix_runner.tables import declaration, launch
from adamix_runner.tables.cli import render
from adamix_runner.tables.plan import TablePlan, make_plan

ROOT = Path(__file__).resolve().parents[2]
CONTRACT_IDS = {"table1", "table2", "table3", "table4", "table5", "table7", "table8", "table9", "table10", "figure5"}


def _paper_params(text: str) -> tuple[float, float]:
    """'0.8M' -> (800000, 50000): the value and half a unit of its last printed digit."""
    number = text.removesuffix("M")
    decimals = len(number.partition(".")[2])
    return float(number) * 1e6, 0.5 * 10 ** (-decimals) * 1e6


def _first_cell(table_id: str, row_id: str):
    decl = declaration.load(table_id)
    return next(c for c in declaration.cells(decl, "paper") if c.row == row_id)


def test_every_contract_table_is_declared_and_checks():
    ids = set(declaration.table_ids())
    assert CONTRACT_IDS | {"demo"} <= ids
    order = declaration.table_ids()
    assert order.index("table2") < order.index("table7") and order.index("table2") < order.index("figure5")
    for table_id in ids:
        decl = declaration.load(table_id)
        assert set(decl.columns) == set(decl.tasks), table_id
        assert {"paper", "smoke"} <= set(decl.profiles), table_id


ROWS = [
    (table_id, row.id)
    for table_id in ("table1", "table2", "table3")
    for row in declaration.load(table_id).rows
    if "not_run" not in row
]


@pytest.mark.parametrize(("table_id", "row_id"), ROWS)
def test_a_dry_run_of_each_row_has_the_papers_param_count_and_satisfies_its_match(table_id, row_id, tmp_path):
    row = next(r for r in declaration.load(table_id).rows if r.id == row_id)
    cell = _first_cell(table_id, row_id)
    cfg = compose_config(*cell.overrides, "dry_run=true", "model.pretrained=false", f"output_root={tmp_path}")
    record = run(cfg).record
    for key, value in row.match.items():
        node = cfg
        for part in key.split("."):
            node = node[part]
        assert node == value, (key, node, value)
    inference = record["params"]["inference"]
    paper, half_unit = _paper_params(row.params)
    if table_id == "table3" and "lora" in row_id:
        assert inference == 393_216  # printed 0.35M, copied from the LoRA paper; the config gives 0.39M (§8)
    elif "peft=full" in cell.overrides:
        assert abs(inference - paper) / paper < 0.01  # the paper prints the backbone's nominal size
    else:
        assert abs(inference - paper) <= half_unit, (inference, row.params)


@pytest.mark.parametrize("table_id", ["table4", "table5", "table8", "table9", "table10", "demo", "study"])
def test_the_other_tables_rows_compose_to_configs_that_satisfy_their_match(table_id):
    decl = declaration.load(table_id)
    for row in (r for r in decl.rows if "not_run" not in r):
        cfg = compose_config(*_first_cell(table_id, row.id).overrides)
        for key, value in row.match.items():
            node = cfg
            for part in key.split("."):
                node = node[part]
            assert node == value, (table_id, row.id, key, node, value)


def test_both_sizes_of_the_pfeiffer_and_houlsby_rows_of_table1():
    sizes = {row.id: row.params for row in declaration.load("table1").rows}
    assert (sizes["pfeiffer_3m"], sizes["pfeiffer_08m"], sizes["houlsby_6m"], sizes["houlsby_08m"]) == (
        "3.0M",
        "0.8M",
        "6.0M",
        "0.8M",
    )


def test_a_cell_is_its_recipe_then_its_row_then_the_profile():
    cell = _first_cell("table1", "adamix_adapter")
    assert cell.task == "mnli" and cell.source == "paper"
    assert cell.overrides[:3] == ("task=mnli", "model=roberta-large", "train.select=best")
    assert cell.overrides[-1] == "output_root=outputs"
    smoke = next(c for c in declaration.cells(declaration.load("table1"), "smoke") if c.name == "lora/qnli")
    assert smoke.overrides[-2:] == ("task.data_dir=tests/fixtures/glue/qnli", "output_root=outputs/smoke")
    assert smoke.source.startswith("ours") and "§3.1" in smoke.source
    jobs = declaration.job_overrides([cell, smoke], [0, 1], ["train.mixed_precision=bf16"])
    assert [job[-2:] for job in jobs][:2] == [
        ["seed=0", "train.mixed_precision=bf16"],
        ["seed=1", "train.mixed_precision=bf16"],
    ]
    assert len(jobs) == 4


def test_ablation_tables_share_table2s_grid_so_its_adamix_runs_are_reused():
    base = declaration.load("table2")
    adamix = next(r for r in base.rows if r.id == "adamix_adapter").overrides
    for table_id in ("table8", "table9", "table10"):
        decl = declaration.load(table_id)
        for key in ("profiles", "tasks", "common", "recipes"):
            assert decl[key] == base[key], (table_id, key)
        assert any(row.overrides == adamix for row in decl.rows), table_id
    for table_id in ("table7", "figure5"):
        cells = declaration.cells(declaration.load(table_id), "paper")
        assert cells == [c for c in declaration.cells(base, "paper") if c.row == "adamix_adapter"]


def test_rows_not_run_stay_out_of_the_grid_and_table2_runs_every_row():
    table2 = declaration.load("table2")
    assert not any("not_run" in row for row in table2.rows)
    assert {c.row for c in declaration.cells(table2, "paper")} == {row.id for row in table2.rows}
    table3 = declaration.load("table3")
    quoted = {row.id: row.not_run for row in table3.rows if "not_run" in row}
    assert quoted and all("Hu et al." in reason or "outside" in reason for reason in quoted.values())
    assert not set(quoted) & {c.row for c in declaration.cells(table3, "paper")}


def test_bad_requests_get_one_line_errors():
    with pytest.raises(UserError, match=r"no table 'table42'.*declared tables: demo, fewshot_study, figure5"):
        declaration.load("table42")
    with pytest.raises(UserError, match="SEEDS must be at least 1"):
        declaration.seeds(declaration.load("table1"), 0)
    with pytest.raises(UserError, match="table demo has no profile 'gpu'"):
        declaration.profile_of(declaration.load("demo"), "gpu")


def test_plan_estimates_the_demo_by_hand(tmp_path, monkeypatch):
    """demo, AdaMix at 20 epochs: 400 samples x 20 epochs x 2 views x the measured padded width, 3 seeds, one done;
    then a bench file's achieved TFLOP/s replaces the default rate."""
    monkeypatch.chdir(tmp_path)
    plan = make_plan("demo", "paper", None, [], tmp_path / "bench")
    cell = next(c for c in plan.cells if c.cell.row == "adamix_e20")
    assert (cell.samples, cell.views, cell.tokens.how) == (8000, 2, "measured")
    assert cell.tokens.train == pytest.approx(53.1, abs=0.05)  # PERFORMANCE.md measured 1,697 / 32 = 53.0
    assert (cell.weights.frozen, cell.weights.trained) == (10_616_832, 73_728)  # MiniLM; 6 x (2 x 384 x 16)
    assert plan.rates() == ["default 65.5 GFLOP/s: measured on the project's 2-core CPU (MiniLM adapter training)"]
    width, eval_width = cell.tokens.train, cell.tokens.eval
    per_token = 4 * 10_616_832 + 6 * 73_728 + 12 * width * 384 * 6
    forward = 2 * (10_616_832 + 73_728) + 4 * eval_width * 384 * 6
    run = 8000 * 2 * width * per_token + 1 * 800 * eval_width * forward  # one final evaluation (no epoch ends)
    assert cell.hours() == pytest.approx(3 * run / 65_497_559_040 / 3600, rel=1e-9)  # ~0.49 h

    (cell.folder / "seed0").mkdir(parents=True)
    (cell.folder / "seed0" / "results.json").write_text(json.dumps({"status": "completed"}))
    bench = tmp_path / "bench"
    bench.mkdir()
    options = {"batch": 16, "seq_len": 64, "dtype": "fp32"}
    for stamp, tflops in (("20260101-000000", 0.05), ("20260301-000000", 0.08)):  # the newest wins
        (bench / f"minilm-cpu-fp32-{stamp}.json").write_text(
            json.dumps({"options": options, "train": {"model_tflops": {"AdaMix, fused 2B consistency": tflops}}})
        )
    plan = make_plan("demo", "paper", None, [], bench)
    cell = next(c for c in plan.cells if c.cell.row == "adamix_e20")
    assert cell.rate.flops_per_s == pytest.approx(0.08e12) and "20260301" in cell.rate.source
    adapter = next(c for c in plan.cells if c.cell.row == "adapter_e20")
    assert adapter.rate.source.startswith("default")  # no single-adapter measurement in that file
    assert cell.left() == [1, 2] and plan.completed() == 1 and plan.runs() == 12 * 3
    assert cell.hours() == pytest.approx(2 * run / 0.08e12 / 3600, rel=1e-9)
    text = render(plan)
    assert "adamix_e20/polarity" in text and "0:done 1:- 2:-" in text and "8,000 x 2 x 53m" in text
    assert "12 cells x 3 seeds = 36 runs: 1 completed, 35 to run" in text


def test_every_declared_table_has_a_make_target():
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.search(r"^TABLE_IDS := (.*)$", makefile, re.M).group(1).split())
    assert set(declaration.paper_table_ids()) <= targets
    assert {"demo", "study", "study_rules"} <= set(declaration.table_ids()) - set(declaration.paper_table_ids())
    assert "table6" in targets  # the few-shot table's slot


def test_all_means_the_paper_tables_grids_first_for_adamix_table_and_adamix_report(monkeypatch, tmp_path):
    """`adamix-table all` and `adamix-report table=all` take the same tables in the same order: every table but
    the real CPU ones (cpu_demo), the grid tables before the inference tables that read their runs."""
    from adamix_runner.report import cli as report_cli
    from adamix_runner.tables import cli as table_cli

    paper = ["table1", "table2", "table3", "table4", "table5", "table6", "table8", "table9", "table10"]
    assert declaration.requested("all") == [*paper, "figure5", "table7"]
    assert declaration.requested("demo") == ["demo"]
    launched, reported = [], []
    monkeypatch.setattr(table_cli, "_one", lambda table_id, args: launched.append(table_id) or 0)
    with pytest.raises(SystemExit) as stop:
        table_cli.main(["all", "--plan"])
    assert stop.value.code == 0
    monkeypatch.setattr(report_cli, "report_table", lambda name, *rest: reported.append(name) or [])
    report_cli.report(["table=all", f"runs={tmp_path}"])
    assert launched == reported == declaration.requested("all")


def test_an_output_root_override_moves_the_runs_the_evaluations_and_the_report(monkeypatch, tmp_path):
    monkeypatch.setattr(launch, "tool", lambda name: name)
    plan = make_plan("study_rules", "smoke", 1, [f"output_root={tmp_path}"], tmp_path / "bench")
    assert plan.root == str(tmp_path) and all(str(c.folder).startswith(str(tmp_path)) for c in plan.cells)
    assert launch.report_command(plan)[2] == f"runs={tmp_path}"
    assert make_plan("study_rules", "smoke", 1, [], tmp_path / "bench").root == "outputs/smoke"


def test_the_three_command_lines(monkeypatch):
    monkeypatch.setattr(launch, "tool", lambda name: name)
    plan = TablePlan(declaration.load("table7"), "smoke", [0, 1], "cpu", "outputs/smoke")
    assert launch.train_command(plan, "slurm", ["model.path=/m"]) == [
        "adamix-run",
        "-m",
        "hydra/sweeper=adamix_table",
        "hydra.sweeper.table=table7",
        "hydra.sweeper.profile=smoke",
        "hydra.sweeper.seeds=2",
        "hydra.sweeper.order=[]",
        "output_root=outputs/smoke",
        "hydra/launcher=slurm",
        "model.path=/m",
    ]
    assert "hydra/launcher=basic" not in launch.train_command(plan, "basic", [])
    with pytest.raises(UserError, match="LAUNCHER must be one of basic, local_parallel, slurm, submitit_local"):
        launch.train_command(plan, "ray", [])
    assert launch.evaluate_command(plan, [Path("r/seed0")]) == [
        "adamix-evaluate",
        "r/seed0",
        "--rules",
        "merge,random,fixed,ensemble",
        "--random-eval-seeds",
        "10",
    ]
    report = ["adamix-report", "table=table7", "runs=outputs/smoke", "profile=smoke", "seeds=2"]
    assert launch.report_command(plan) == report  # the seeds that ran, so SEEDS=1 does not report "seeds 0..2"


def _satisfies(cfg, match) -> bool:
    from adamix_runner.report.grid import _same

    return all(_same(OmegaConf.select(cfg, key), value) for key, value in match.items())


def test_rows_of_tables_sharing_runs_pick_only_their_own_runs():
    """table-demo and the study share one output root and some run folders: each row's composed config satisfies its
    own match and no other row's, else the report would mix, e.g., the no-consistency runs into AdaMix's row."""
    rows = {}
    for table_id in ("demo", "study"):
        for row in (r for r in declaration.load(table_id).rows if "not_run" not in r):
            cell = _first_cell(table_id, row.id)
            rows[f"{table_id}:{row.id}"] = (tuple(sorted(cell.overrides)), row.match)
    configs = {name: compose_config(*overrides) for name, (overrides, _) in rows.items()}
    for name, (overrides, match) in rows.items():
        picked = {other for other, cfg in configs.items() if _satisfies(cfg, match)}
        same_cell = {other for other, (theirs, _) in rows.items() if theirs == overrides}
        assert picked == same_cell, (name, sorted(picked - same_cell))
    assert len({o for o, _ in rows.values()}) == len(rows) - 6  # the 6 shared budget cells
