"""Runs of different precision in one process (a basic-launcher sweep over train.mixed_precision), and the
results.json `runtime` record of what ran."""

from __future__ import annotations

import json

import pytest

from adamix_runner.errors import UserError
from adamix_runner.run import run
from tests.conftest import FIXTURES

SHORT = [
    "task=mrpc",
    f"task.data_dir={FIXTURES / 'glue' / 'mrpc'}",
    "model=tiny-bert",
    "train.max_steps=2",
    "train.batch_size=8",
    "data.max_eval_samples=16",
    "train.cpu=true",
]


def test_one_process_runs_fp32_then_bf16_and_records_what_ran(compose_run):
    fp32 = run(compose_run(*SHORT, "train.mixed_precision=no"))
    bf16 = run(compose_run(*SHORT, "train.mixed_precision=bf16", "train.allow_tf32=true"))
    assert (fp32.status, bf16.status) == ("completed", "completed")
    assert fp32.record["runtime"] == {"mixed_precision": "no", "allow_tf32": False, "device": "cpu", "world_size": 1}
    # TF32 was asked for and does not exist on the CPU: the record says it did not run
    assert bf16.record["runtime"] == {"mixed_precision": "bf16", "allow_tf32": False, "device": "cpu", "world_size": 1}
    assert fp32.run_dir != bf16.run_dir
    saved = json.loads((bf16.run_dir / "results.json").read_text())
    assert saved["runtime"]["mixed_precision"] == "bf16"


def test_fp16_on_the_cpu_is_refused_before_anything_loads(compose_run):
    cfg = compose_run(*SHORT, "train.mixed_precision=fp16")
    with pytest.raises(UserError, match="fp16 needs a CUDA GPU"):
        run(cfg)
