"""A submitit job with two tasks (`hydra.launcher.tasks_per_node=2`) is one DDP run, not two copies: each task
gets its torch.distributed rank from submitit's job environment (training/runtime.py), and with a per-task batch of
4 the run equals one process with batch 8. Through Hydra's submitit_local launcher, on the CPU (gloo)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from adamix_runner.config.compose import compose_config
from adamix_runner.run import run
from tests.integration.test_ddp import COMMON, _run_folder, _weights


@pytest.mark.slow
def test_two_submitit_tasks_are_one_ddp_run_with_the_global_batch(tmp_path):
    launcher = ["hydra/launcher=submitit_local", "hydra.launcher.tasks_per_node=2", "hydra.launcher.timeout_min=10"]
    overrides = [*COMMON, "train.batch_size=4", f"output_root={tmp_path / 'tasks'}"]
    command = [sys.executable, "-m", "adamix_runner", "-m", *launcher, *overrides]
    done = subprocess.run(
        command, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    folder = _run_folder(tmp_path / "tasks")
    record = json.loads((folder / "results.json").read_text())
    assert (record["status"], record["runtime"]["world_size"]) == ("completed", 2)

    single = run(compose_config(*COMMON, "train.batch_size=8", f"output_root={tmp_path / 'single'}"))
    expected = _weights(single.run_dir)
    for name, tensor in _weights(folder).items():
        torch.testing.assert_close(tensor, expected[name], atol=1e-5, rtol=1e-4, msg=name)
    assert record["metrics"] == pytest.approx(single.record["metrics"], abs=1e-5)
