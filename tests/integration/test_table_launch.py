"""`adamix-table`'s launch path with a launcher: hydra.launcher.* keys compose (the README's cluster command), the
exit codes of train / evaluate / report, and a smoke table through Hydra's real submitit_local launcher (the SLURM
path as local processes: the same plugin, the same pickled jobs and .submitit/ logs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from adamix_runner.tables import cli, launch
from adamix_runner.tables.plan import make_plan

ROOT = Path(__file__).resolve().parents[2]
# `make table3 PROFILE=smoke SEEDS=1 LAUNCHER=submitit_local ARGS="hydra.launcher.timeout_min=30"` (README "Running a
# table on a SLURM cluster"; tests/unit/test_readme_slurm.py checks that the README says exactly this)
SUBMITIT_LOCAL_SMOKE = ["table3", "--profile", "smoke", "--seeds", "1", "--launcher", "submitit_local"]
SUBMITIT_LOCAL_SMOKE += ["hydra.launcher.timeout_min=30"]
SLURM_KEYS = ["hydra.launcher.partition=gpu", "hydra.launcher.timeout_min=480", "hydra.launcher.account=lab"]


def _table(*argv: str) -> int:
    with pytest.raises(SystemExit) as done:
        cli.main(list(argv))
    return done.value.code


def test_launcher_keys_compose_with_their_launcher_and_fail_clearly_without(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert _table("table3", "--plan", "--launcher", "slurm", *SLURM_KEYS, f"output_root={tmp_path}") == 0
    assert "3 cells x 3 seeds = 9 runs" in capsys.readouterr().out
    assert _table("table3", "--plan", "--launcher", "submitit_local", "hydra.launcher.timeout_min=5") == 0
    capsys.readouterr()
    assert _table("table3", "--plan", "hydra.launcher.partition=gpu") == 2
    error = capsys.readouterr().err
    assert "Could not override 'hydra.launcher.partition'" in error and "need a launcher: LAUNCHER=slurm" in error
    assert _table("table3", "--plan", "--launcher", "slurm", "hydra.launcher.partiton=gpu") == 2  # misspelt key
    assert "hydra.launcher.partiton" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("table_id", "codes", "expected", "calls"),
    [
        ("table3", {"adamix-run": 0, "adamix-report": 0}, 0, ["adamix-run", "adamix-report"]),
        ("table3", {"adamix-run": 1, "adamix-report": 0}, 1, ["adamix-run", "adamix-report"]),  # still reports
        ("table3", {"adamix-run": 0, "adamix-report": 2}, 2, ["adamix-run", "adamix-report"]),
        ("study_rules", {"adamix-run": 0, "adamix-report": 0}, 1, ["adamix-run", "adamix-report"]),  # none finished
    ],
)
def test_launch_exit_codes(table_id, codes, expected, calls, tmp_path, monkeypatch):
    monkeypatch.setattr(launch, "tool", lambda name: name)
    seen = []
    monkeypatch.setattr(launch, "_call", lambda command: seen.append(command[0]) or codes[command[0]])
    plan = make_plan(table_id, "smoke", 1, [f"output_root={tmp_path}"], tmp_path / "bench")
    assert launch.launch(plan, "submitit_local", ["hydra.launcher.timeout_min=5"]) == expected
    assert seen == calls


@pytest.mark.slow
def test_a_smoke_table_through_the_real_submitit_local_launcher(tmp_path):
    """Table 3's smoke profile (3 cells, one seed) as `make table3 LAUNCHER=submitit_local ARGS=...` runs it:
    ~6 min on the shared 2 cores (three job processes, beam search, the report)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    command = [sys.executable, "-m", "adamix_runner.tables", *SUBMITIT_LOCAL_SMOKE, f"output_root={tmp_path}"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "hydra/launcher=submitit_local" in done.stdout and "hydra.sweeper.order=[" in done.stdout
    records = [json.loads(p.read_text()) for p in tmp_path.glob("runs/e2e/tiny-gpt2/*/*/seed0/results.json")]
    assert sorted(r["peft"] for r in records) == ["adamix", "adamix_lora", "lora"]
    assert {r["status"] for r in records} == {"completed"}
    assert len(list((tmp_path / ".submitit").glob("*/*_result.pkl"))) == 3
    plan = make_plan("table3", "smoke", 1, [f"output_root={tmp_path}"], tmp_path / "bench")
    assert plan.completed() == 3  # in the folders PLAN computes
    assert (tmp_path / "reports" / "table3.md").is_file()
