"""The table sweeper end to end (slow): the demo table's smoke profile as one multirun lands every run in the
folder PLAN computed for it, and a rerun finds them all completed. CI runs every table this way
(`.ci/run`: make tables PROFILE=smoke SEEDS=1, then the reports)."""

from __future__ import annotations

import subprocess

import pytest

from adamix_runner.tables import launch
from adamix_runner.tables.plan import make_plan


@pytest.mark.slow
def test_the_demo_smoke_multirun_lands_in_the_planned_folders(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    plan = make_plan("demo", "smoke", 1, [], tmp_path / "bench")
    assert (plan.runs(), plan.completed()) == (12, 0)
    command = launch.train_command(plan, "basic", [])
    assert command[1:6] == ["-m", "hydra/sweeper=adamix_table", "hydra.sweeper.table=demo",
                            "hydra.sweeper.profile=smoke", "hydra.sweeper.seeds=1"]  # fmt: skip
    subprocess.run(command, check=True, cwd=tmp_path)
    assert plan.refresh().completed() == 12
    stamps = {p: p.stat().st_mtime_ns for p in tmp_path.glob("outputs/smoke/runs/*/*/*/*/seed0/results.json")}
    assert len(stamps) == 12
    subprocess.run(command, check=True, cwd=tmp_path, capture_output=True)  # resumes: nothing to do
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
