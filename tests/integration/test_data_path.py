"""The speed switches through run(): length-grouped batches, DataLoader workers, attention kernel, torch.compile.

Each must leave the method intact: the same run reproduces, switches that do not change the arithmetic do not change
the numbers, and the ones that do (batch order) change them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from adamix_runner.run import run
from tests.conftest import FIXTURES

MRPC = ["task=mrpc", f"task.data_dir={FIXTURES / 'glue' / 'mrpc'}", "model=tiny-bert"]
SHORT = ["train.max_steps=6", "train.batch_size=8", "train.log_every_steps=2"]
PINNED = [0.6942489, 0.6949279, 0.6942058]  # tests/integration/test_run.py: the default shuffled order


def _train_losses(folder: Path) -> list[float]:
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    return [row["train/loss"] for row in rows if "train/loss" in row]


def _adapter(folder: Path) -> dict:
    return load_file(folder / "adapter" / "adaptation.safetensors")


def test_workers_and_eager_attention_keep_the_pinned_losses(compose_run):
    result = run(compose_run(*MRPC, *SHORT, "train.num_workers=2", "model.attn_implementation=eager"))
    assert _train_losses(result.run_dir) == pytest.approx(PINNED, abs=1e-5)


def test_workers_do_not_change_the_run_folder(compose_run, tmp_path):
    """Two roots: in one root the second command would only report the first one's result."""
    without = run(compose_run(*MRPC, *SHORT, f"output_root={tmp_path / 'without'}"))
    with_workers = run(compose_run(*MRPC, *SHORT, "train.num_workers=2", f"output_root={tmp_path / 'with'}"))
    assert with_workers.run_dir.relative_to(tmp_path / "with") == without.run_dir.relative_to(tmp_path / "without")
    assert with_workers.record["metrics"] == without.record["metrics"]
    assert _train_losses(with_workers.run_dir) == _train_losses(without.run_dir)
    reference, from_workers = _adapter(without.run_dir), _adapter(with_workers.run_dir)
    assert all(torch.equal(reference[key], from_workers[key]) for key in reference)


def test_length_grouping_is_seeded_and_changes_the_batch_order(compose_run, tmp_path):
    grouped = [*MRPC, *SHORT, "train.group_by_length=true"]
    first = run(compose_run(*grouped))
    again = run(compose_run(*grouped, f"output_root={tmp_path / 'again'}"))
    assert first.run_dir != run(compose_run(*MRPC, *SHORT)).run_dir
    assert _train_losses(first.run_dir) == _train_losses(again.run_dir)
    assert _train_losses(first.run_dir) != pytest.approx(PINNED, abs=1e-5)
    reference, repeated = _adapter(first.run_dir), _adapter(again.run_dir)
    assert all((reference[key] == repeated[key]).all() for key in reference)


@pytest.mark.slow  # over 20 s (subprocesses); .ci/run runs make test-slow
def test_compiled_training_matches_eager_training(compose_run):
    """Without dropout (compiled kernels draw their own dropout masks) the arithmetic is the same."""
    no_dropout = ["+model.architecture.hidden_dropout_prob=0", "+model.architecture.attention_probs_dropout_prob=0"]
    eager = run(compose_run(*MRPC, *SHORT, *no_dropout))
    compiled = run(compose_run(*MRPC, *SHORT, *no_dropout, "train.compile=true"))
    assert compiled.record["status"] == "completed"
    assert _train_losses(compiled.run_dir) == pytest.approx(_train_losses(eager.run_dir), abs=1e-5)
    assert _train_losses(eager.run_dir) != pytest.approx(PINNED, abs=1e-5)
    reference, from_compiled = _adapter(eager.run_dir), _adapter(compiled.run_dir)
    assert all((reference[key] - from_compiled[key]).abs().max() < 1e-5 for key in reference)


def test_generation_trains_on_length_grouped_batches_with_a_worker(compose_run):
    e2e = ["task=e2e", f"task.data_dir={FIXTURES / 'nlg' / 'e2e'}", "model=tiny-gpt2", "task.metrics=[bleu]"]
    fast = ["train.max_steps=4", "train.batch_size=4", "train.log_every_steps=1", "train.eval_every_epoch=false"]
    decode = ["generation.num_beams=1", "generation.max_new_tokens=4"]
    shuffled = run(compose_run(*e2e, *fast, *decode))
    grouped = run(compose_run(*e2e, *fast, *decode, "train.group_by_length=true", "train.num_workers=1"))
    assert grouped.record["status"] == "completed"
    assert len(_train_losses(grouped.run_dir)) == 4
    assert _train_losses(grouped.run_dir) != pytest.approx(_train_losses(shuffled.run_dir), abs=1e-6)
