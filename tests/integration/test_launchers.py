"""Sweeps through Hydra's launcher plugins: the real CLI, each sweep point its own process and run folder.

`submitit_local` runs each point as a submitit job on this machine, exactly as `submitit_slurm` would run it on a
cluster (same pickled job, same `.submitit/` logs), so it is the local stand-in for the SLURM path.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from adamix_runner.config.compose import compose_config

FIXTURE = Path(__file__).parents[1] / "fixtures" / "glue" / "mrpc"
POINT = [
    "task=mrpc",
    f"task.data_dir={FIXTURE}",
    "model=tiny-bert",
    "train.max_steps=2",
    "train.batch_size=8",
    "logger=none",
]
SWEEP = "peft.adapter_dim=4,8"


def _sweep(tmp_path: Path, *launcher: str) -> list[dict]:
    """Run a two-point sweep with `launcher` overrides; the results.json records it left, by adapter_dim."""
    command = [sys.executable, "-m", "adamix_runner", "-m", *launcher, *POINT, f"output_root={tmp_path}", SWEEP]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    records = [json.loads(path.read_text()) for path in tmp_path.glob("runs/*/*/*/*/seed0/results.json")]
    return sorted(records, key=lambda record: record["config"]["peft"]["adapter_dim"])


@pytest.mark.slow  # over 20 s (subprocesses); .ci/run runs make test-slow
def test_submitit_local_runs_each_point_as_a_job(tmp_path):
    records = _sweep(tmp_path, "hydra/launcher=submitit_local")
    assert [record["status"] for record in records] == ["completed", "completed"]
    assert [record["config"]["peft"]["adapter_dim"] for record in records] == [4, 8]
    assert len({record["config_hash"] for record in records}) == 2
    assert len(list((tmp_path / ".submitit").glob("*/*_result.pkl"))) == 2


@pytest.mark.slow
def test_local_parallel_preset_runs_points_in_parallel_processes(tmp_path):
    records = _sweep(tmp_path, "hydra/launcher=local_parallel")
    assert [record["status"] for record in records] == ["completed", "completed"]
    assert [record["config"]["peft"]["adapter_dim"] for record in records] == [4, 8]


def test_slurm_preset_extends_submitit_with_one_gpu_per_point_and_requeue():
    cfg = compose_config("hydra/launcher=slurm", "hydra.launcher.partition=gpu", with_hydra=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert (launcher.partition, launcher.gpus_per_node, launcher.tasks_per_node) == ("gpu", 1, 1)
    assert (launcher.timeout_min, launcher.max_num_timeout, launcher.signal_delay_s) == (720, 3, 120)
    assert launcher.submitit_folder == "outputs/.submitit/%j"  # next to the run folders of output_root
