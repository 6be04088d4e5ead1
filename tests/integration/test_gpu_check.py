"""scripts/gpu_check.sh --dry-run: every step of the GPU check runs on the CPU on tiny shapes (no GPU is lent to
this project's CI), the sync counter reports that it counted nothing without CUDA, and PLAN reads the bench file
the check wrote (slow: ~8 processes, several minutes on the shared 2 cores)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_gpu_check_dry_run_passes_every_step_and_plan_reads_its_bench_file(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        ["scripts/gpu_check.sh", "--dry-run", str(tmp_path)], cwd=ROOT, env=env, capture_output=True, text=True
    )
    summary = [line.split("\t") for line in (tmp_path / "summary.tsv").read_text().splitlines()]
    assert done.returncode == 0, (tmp_path / "check.log").read_text()[-4000:]
    steps = [name for name, _, _ in summary]
    assert steps[:2] == ["precision-no", "precision-bf16"]
    assert steps[-5:] == ["compile", "syncs", "bench", "torchrun", "plan"]
    assert all(code == "0" for _, code, _ in summary)
    syncs = json.loads((tmp_path / "syncs.json").read_text())
    assert syncs["cuda"] is False and syncs["steps_watched"] == 27 and syncs["syncs"] is None
    (bench,) = (tmp_path / "bench").glob("tiny-bert-cpu-fp32-*.json")
    assert json.loads(bench.read_text())["train"]["model_tflops"]["single adapter"] > 0
    assert "measured" in (tmp_path / "check.log").read_text().split("=== plan:")[1]
