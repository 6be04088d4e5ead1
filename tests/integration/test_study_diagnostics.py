"""scripts/study_adamix.py --diagnose: a run's initial weights are rebuilt from its seed, its trained ones read from
the experts it saved; on a run that barely moves (lr 1e-12: Adam steps of ~1e-12) the movement is ~0."""

from __future__ import annotations

import math

import pytest
from scripts.study_adamix import diagnose

from adamix_runner.run import run
from tests.conftest import FIXTURES

MRPC = ["task=mrpc", f"task.data_dir={FIXTURES / 'glue' / 'mrpc'}", "model=tiny-bert", "peft=adamix"]
SHORT = ["train.max_steps=2", "train.batch_size=8", "train.eval_every_epoch=false", "data.max_eval_samples=8"]


@pytest.mark.parametrize("init, shrinkage_at_init", [("independent", None), ("identical", 1.0)])
def test_diagnostics_rebuild_the_runs_init_and_read_its_experts(compose_run, init, shrinkage_at_init):
    still = run(compose_run(*MRPC, *SHORT, "train.lr=1e-12", f"peft.expert_init={init}")).run_dir
    found = diagnose(still)
    assert found["down_movement"] < 1e-9 and found["up_movement"] < 1e-9  # a wrong init would be ~0.3
    assert found["down_merge_shrinkage"] == pytest.approx(found["down_merge_shrinkage_at_init"])
    if shrinkage_at_init is None:  # 4 independent draws: the mean keeps ~1/sqrt(4) of an expert's norm
        assert found["down_merge_shrinkage_at_init"] == pytest.approx(1 / math.sqrt(4), abs=0.05)
    else:
        assert found["down_merge_shrinkage_at_init"] == pytest.approx(shrinkage_at_init)
    moved = diagnose(run(compose_run(*MRPC, *SHORT, "train.lr=1e-2", f"peft.expert_init={init}")).run_dir)
    assert moved["down_movement"] > 1e-3 and moved["up_movement"] > 1e-3  # a million times the still run's
