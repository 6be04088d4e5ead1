"""Run-level promises that had no test: accumulation equals the doubled batch, evaluation every N steps, the
inference modes through a run and its eval_only reload, and the saved adapter is the mean of the final experts."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from adamix_runner.run import run
from adamix_runner.training import checkpoint
from tests.conftest import FIXTURES

MRPC = ["task=mrpc", f"task.data_dir={FIXTURES / 'glue' / 'mrpc'}", "model=tiny-bert", "train.log_every_steps=1"]
NO_DROPOUT = ["+model.architecture.hidden_dropout_prob=0", "+model.architecture.attention_probs_dropout_prob=0"]


def _rows(folder) -> list[dict]:
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def test_two_accumulated_micro_batches_equal_one_batch_of_twice_the_size(compose_run):
    """One expert (no routing draw per micro-batch) and no dropout: the same examples, the same mean loss."""
    common = [*MRPC, *NO_DROPOUT, "peft=adapter", "train.max_steps=4"]
    accumulated = run(compose_run(*common, "train.batch_size=4", "train.grad_accum=2"))
    doubled = run(compose_run(*common, "train.batch_size=8"))
    assert accumulated.run_dir != doubled.run_dir
    losses = [[row["train/loss"] for row in _rows(r.run_dir) if "train/loss" in row] for r in (accumulated, doubled)]
    assert len(losses[0]) == 4
    assert losses[0] == pytest.approx(losses[1], abs=1e-5)
    ours = load_file(accumulated.run_dir / "adapter" / "adaptation.safetensors")
    theirs = load_file(doubled.run_dir / "adapter" / "adaptation.safetensors")
    for key in ours:
        torch.testing.assert_close(ours[key], theirs[key], atol=1e-5, rtol=1e-4, msg=key)


def test_eval_every_steps_evaluates_at_those_steps(compose_run):
    result = run(compose_run(*MRPC, "train.max_steps=5", "train.eval_every_steps=2", "train.eval_every_epoch=false"))
    rows = _rows(result.run_dir)
    assert [row["step"] for row in rows if "validation/accuracy" in row] == [2, 4]
    assert [row["step"] for row in rows if "final/validation/accuracy" in row] == [-1]


@pytest.mark.slow
@pytest.mark.parametrize("inference", ["random", "fixed", "ensemble"])
def test_each_inference_mode_runs_and_its_saved_adapter_evaluates_the_same(compose_run, inference):
    mode = [f"peft.inference={inference}", "peft.fixed_expert=2"]
    trained = run(compose_run(*MRPC, *mode, "train.max_steps=3", "train.eval_every_epoch=false"))
    assert trained.record["status"] == "completed"
    # one adapter module's size under every rule (what infers at a time), all 4 experts and the head trained
    assert trained.record["params"] == {"trainable": 5378, "inference": 2144, "backbone": 1011360}
    saved = json.loads((trained.run_dir / "adapter" / "adapter_config.json").read_text())
    assert saved["merged"] is False and saved["num_experts"] == 4
    reloaded = run(compose_run(*MRPC, *mode, "eval_only=true", f"adapter_path={trained.run_dir / 'adapter'}"))
    assert reloaded.record["metrics"] == trained.record["metrics"]


@pytest.mark.slow
def test_the_saved_adapter_is_the_mean_of_the_final_experts_and_the_head_is_saved_as_trained(compose_run):
    keep = ["train.max_steps=3", "train.checkpoint_every_steps=3", "train.keep_checkpoint=true"]
    result = run(compose_run(*MRPC, *keep, "train.eval_every_epoch=false"))
    final = load_file(checkpoint.step_directories(result.run_dir / "checkpoint")[-1] / checkpoint.WEIGHTS_FILE)
    adapter = load_file(result.run_dir / "adapter" / "adaptation.safetensors")
    experts = [key for key in adapter if final[key].shape[0] == 4]
    assert len(experts) == 4  # share=up: down weight and bias of two layers have 4 experts; up is shared
    for key, merged in adapter.items():
        torch.testing.assert_close(merged, final[key].mean(0, keepdim=True), atol=1e-7, rtol=1e-6, msg=key)
    head = load_file(result.run_dir / "adapter" / "head.safetensors")
    assert head.keys() == {"classifier.weight", "classifier.bias"}
    assert all(torch.equal(head[key], final[key]) for key in head)
