"""train.compile=true through run(): no graph break (the routing is drawn outside the compiled layers), the eager
run's numbers, and evaluation in the run's precision (gpu-readiness audit, finding 15)."""

from __future__ import annotations

import json

import pytest
import torch
from accelerate.utils import compile_regions
from torch._dynamo.utils import counters

from adamix_runner.adaptation import mixture
from adamix_runner.run import run
from adamix_runner.training import loop
from tests.conftest import FIXTURES

MRPC = ["task=mrpc", f"task.data_dir={FIXTURES / 'glue' / 'mrpc'}", "model=tiny-bert", "train.cpu=true"]
SHORT = ["train.max_steps=6", "train.batch_size=8", "train.log_every_steps=2", "train.eval_every_epoch=false"]
NO_DROPOUT = ["+model.architecture.hidden_dropout_prob=0", "+model.architecture.attention_probs_dropout_prob=0"]


def _train_losses(folder) -> list[float]:
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    return [row["train/loss"] for row in rows if "train/loss" in row]


@pytest.mark.slow  # Inductor compiles the layers: about a minute on CPU; .ci/run runs make test-slow
def test_compiled_run_has_no_graph_break_matches_eager_and_evaluates_in_bf16(compose_run, monkeypatch):
    eager = run(compose_run(*MRPC, *SHORT, *NO_DROPOUT))
    torch._dynamo.reset()
    counters.clear()
    compiled = run(compose_run(*MRPC, *SHORT, *NO_DROPOUT, "train.compile=true"))
    assert compiled.record["status"] == "completed"
    assert dict(counters["graph_break"]) == {}
    assert counters["stats"]["unique_graphs"] > 0
    assert _train_losses(compiled.run_dir) == pytest.approx(_train_losses(eager.run_dir), abs=1e-5)

    eval_dtypes = []
    forward = mixture.ExpertLinear.forward

    def recording(self, x, expert=None):
        out = forward(self, x, expert)
        if not self.training:
            eval_dtypes.append(out.dtype)
        return out

    monkeypatch.setattr(mixture.ExpertLinear, "forward", recording)
    # Which module evaluation runs through does not depend on the backend: Dynamo without Inductor is enough here.
    monkeypatch.setattr(loop, "compile_model", lambda model: compile_regions(model, dynamic=True, backend="eager"))
    bf16 = run(compose_run(*MRPC, *SHORT, "train.compile=true", "train.mixed_precision=bf16"))
    assert bf16.record["status"] == "completed"
    assert eval_dtypes and set(eval_dtypes) == {torch.bfloat16}
