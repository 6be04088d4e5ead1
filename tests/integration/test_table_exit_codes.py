"""`adamix-table` end to end: its exit codes (a failed training still evaluates and reports, then exits non-zero;
a bad table or SEEDS exits 2 with one line), and SEEDS / ARGS reaching every run of the multirun it launches.

The exit-code tests put stand-in console scripts beside the interpreter (where `adamix-table` looks for them), so
the real command lines run as subprocesses and only the tools' work is faked; the SEEDS / ARGS test runs the real
`adamix-run` multirun in-process (dry runs on the meta device)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from hydra.core.global_hydra import GlobalHydra

from adamix_runner.cli import run as cli
from adamix_runner.tables import cli as table_cli
from adamix_runner.tables import launch
from adamix_runner.tables.plan import make_plan

STAND_IN = """#!/bin/sh
echo "$(basename "$0") $*" >> "{log}"
exit "${{{variable}:-0}}"
"""
TOOLS = {"adamix-run": "TRAIN_EXIT", "adamix-evaluate": "EVALUATE_EXIT", "adamix-report": "REPORT_EXIT"}


@pytest.fixture
def tools(tmp_path, monkeypatch):
    """Stand-ins for the three console scripts; returns a function that reads the calls they got."""
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    for name, variable in TOOLS.items():
        script = bin_dir / name
        script.write_text(STAND_IN.format(log=log, variable=variable))
        script.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(bin_dir / "python"))
    monkeypatch.chdir(tmp_path)
    return lambda: [line.split()[0] for line in log.read_text().splitlines()] if log.exists() else []


def _exit(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as stop:
        table_cli.main(argv)
    return stop.value.code


@pytest.mark.parametrize(
    ("codes", "expected"),
    [({}, 0), ({"TRAIN_EXIT": "1"}, 1), ({"TRAIN_EXIT": "1", "REPORT_EXIT": "2"}, 2)],
)
def test_a_grid_table_reports_whatever_training_returned_and_exits_with_the_worst_code(
    tools, monkeypatch, codes, expected
):
    for variable, code in codes.items():
        monkeypatch.setenv(variable, code)
    assert _exit(["demo", "--profile", "smoke", "--seeds", "1"]) == expected
    assert tools() == ["adamix-run", "adamix-report"]


def test_an_inference_table_evaluates_the_finished_runs_after_a_failed_training(tools, tmp_path, monkeypatch):
    plan = make_plan("study_rules", "smoke", 1, [], tmp_path / "bench")
    for cell in plan.cells[:2]:
        (cell.folder / "seed0").mkdir(parents=True)
        (cell.folder / "seed0" / "results.json").write_text(json.dumps({"status": "completed"}))
    monkeypatch.setenv("TRAIN_EXIT", "1")
    assert _exit(["study_rules", "--profile", "smoke", "--seeds", "1"]) == 1
    assert tools() == ["adamix-run", "adamix-evaluate", "adamix-report"]
    evaluated = (tmp_path / "calls.log").read_text().splitlines()[1].split()[1:3]
    assert evaluated == [str(cell.folder / "seed0") for cell in plan.cells[:2]]
    monkeypatch.setenv("TRAIN_EXIT", "0")
    monkeypatch.setenv("EVALUATE_EXIT", "2")
    assert _exit(["study_rules", "--profile", "smoke", "--seeds", "1"]) == 2


def test_an_inference_table_without_finished_runs_reports_and_fails(tools):
    assert _exit(["study_rules", "--profile", "smoke", "--seeds", "1"]) == 1  # nothing to evaluate
    assert tools() == ["adamix-run", "adamix-report"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["table42"], "error: no table 'table42'"),
        (["demo", "--seeds", "0"], "error: SEEDS must be at least 1, not 0"),
    ],
)
def test_bad_requests_exit_2_before_anything_runs(tools, capsys, argv, message):
    assert _exit(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and "Traceback" not in err
    assert tools() == []


def test_plan_runs_nothing_and_exits_0(tools, capsys):
    assert _exit(["demo", "--profile", "smoke", "--plan"]) == 0
    assert "12 cells x 3 seeds = 36 runs: 0 completed, 36 to run" in capsys.readouterr().out
    assert tools() == []


def test_seeds_and_extra_overrides_reach_every_run_of_the_multirun(tmp_path, monkeypatch, capsys):
    extra = ["dry_run=true", "train.lr=0.0123"]
    plan = make_plan("study_rules", "smoke", 2, [f"output_root={tmp_path}", *extra], tmp_path / "bench")
    monkeypatch.setattr(launch, "tool", lambda name: name)
    command = launch.train_command(plan, "basic", [f"output_root={tmp_path}", *extra])
    monkeypatch.setattr(sys, "argv", command)
    try:
        cli.main()
    except SystemExit as stop:
        captured = capsys.readouterr()
        assert stop.code in (None, 0), captured.out[-3000:] + captured.err[-3000:]
    finally:
        GlobalHydra.instance().clear()
    for cell in plan.cells:
        for seed in (0, 1):
            record = json.loads((cell.folder / f"seed{seed}" / "results.json").read_text())
            assert (record["status"], record["seed"]) == ("planned", seed), cell.folder
            assert record["config"]["train"]["lr"] == 0.0123
    assert sorted(p.parent.name for p in Path(tmp_path).glob("runs/*/*/*/*/*/results.json")) == sorted(
        ["seed0", "seed1"] * len(plan.cells)
    )
