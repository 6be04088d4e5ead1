"""Resume is exact (also mid-accumulation), visible, falls back past an incomplete checkpoint, and overwrite=true
starts afresh."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import adamix_runner.pipelines.classification as classification
from adamix_runner.run import run
from adamix_runner.training import checkpoint
from adamix_runner.training.signals import Interrupted
from tests.conftest import FIXTURES

# 64 training examples / batch 4 = 16 micro-batches an epoch; with grad_accum=2, 8 optimizer steps.
ACCUMULATING = [
    "task=mrpc",
    f"task.data_dir={FIXTURES / 'glue' / 'mrpc'}",
    "model=tiny-bert",
    "train.batch_size=4",
    "train.grad_accum=2",
    "train.max_steps=5",
    "train.log_every_steps=1",
]


def _signal_at_micro_batch(number: int):
    """The training loss, sending this process SIGINT during micro-batch `number` (the loop's handler catches it)."""
    calls = {"n": 0}
    original = classification.adamix_loss

    def loss(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == number:
            os.kill(os.getpid(), signal.SIGINT)
        return original(*args, **kwargs)

    return loss


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    """The saved adapter and the classification head (both train, both resume)."""
    head = {f"head/{key}": value for key, value in load_file(folder / "adapter" / "head.safetensors").items()}
    return {**load_file(folder / "adapter" / "adaptation.safetensors"), **head}


def _assert_equal_weights(ours: dict, theirs: dict) -> None:
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[key], theirs[key]) for key in ours)


def _rows(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def test_a_signal_inside_an_accumulation_window_resumes_to_the_uninterrupted_result(
    compose_run, tmp_path, monkeypatch, capsys
):
    reference = run(compose_run(*ACCUMULATING, f"output_root={tmp_path / 'reference'}"))
    cfg = compose_run(*ACCUMULATING, f"output_root={tmp_path / 'stopped'}")
    with monkeypatch.context() as patch:
        patch.setattr(classification, "adamix_loss", _signal_at_micro_batch(3))  # the first half of step 2
        with pytest.raises(Interrupted) as stopped:
            run(cfg)
    assert stopped.value.step == 2  # the window of micro-batches 3 and 4 finished before the checkpoint
    saved = json.loads((Path(stopped.value.checkpoint) / checkpoint.PROGRESS_FILE).read_text())
    assert (saved["global_step"], saved["batches_done"]) == (2, 4)

    resumed = run(cfg)
    assert resumed.status == "completed"
    assert resumed.record["metrics"] == reference.record["metrics"]
    _assert_equal_weights(_weights(resumed.run_dir), _weights(reference.run_dir))
    where = {"checkpoint": stopped.value.checkpoint, "step": 2, "epoch": 0, "batch": 4}
    assert resumed.record["resumed_from"] == where
    assert reference.record["resumed_from"] is None
    noted = [row for row in _rows(resumed.run_dir) if "resumed/checkpoint" in row]
    assert noted == [{"step": 2, "time": noted[0]["time"], **{f"resumed/{k}": v for k, v in where.items()}}]
    assert f"resumed from {stopped.value.checkpoint} (step 2, epoch 0, batch 4)" in capsys.readouterr().out


def test_an_incomplete_newest_checkpoint_falls_back_to_the_older_one(compose_run):
    cfg = compose_run(
        *ACCUMULATING,
        "train.checkpoint_every_steps=2",
        "train.keep_last_checkpoints=2",
        "train.keep_checkpoint=true",
    )
    first = run(cfg)
    kept = first.run_dir / "checkpoint"
    assert [d.name for d in checkpoint.step_directories(kept)] == ["step-00000002", "step-00000004"]
    (kept / "step-00000004" / checkpoint.COMPLETE_MARKER).unlink()  # as if the newest save never finished
    trained = _weights(first.run_dir)
    (first.run_dir / "results.json").unlink()

    again = run(cfg)
    assert again.record["resumed_from"] == {
        "checkpoint": str(kept / "step-00000002"),
        "step": 2,
        "epoch": 0,
        "batch": 4,
    }
    _assert_equal_weights(_weights(again.run_dir), trained)


def test_overwrite_with_a_kept_checkpoint_trains_afresh_with_a_new_metrics_file(compose_run):
    cfg = compose_run(*ACCUMULATING, "train.keep_checkpoint=true")
    first = run(cfg)
    logged = _rows(first.run_dir)
    assert [row["step"] for row in logged if "train/loss" in row] == [1, 2, 3, 4, 5]

    again = run(compose_run(*ACCUMULATING, "train.keep_checkpoint=true", "overwrite=true"))
    assert again.run_dir == first.run_dir
    assert again.record["resumed_from"] is None
    rows = _rows(again.run_dir)
    assert [row["step"] for row in rows if "train/loss" in row] == [1, 2, 3, 4, 5]
    assert [row["train/loss"] for row in rows if "train/loss" in row] == [
        row["train/loss"] for row in logged if "train/loss" in row
    ]


@pytest.mark.parametrize(
    ("minutes", "expected"),
    [(1e-9, [1, 2, 3]), pytest.param(0, [], marks=pytest.mark.slow), pytest.param(15, [], marks=pytest.mark.slow)],
)
def test_checkpoints_by_the_clock(compose_run, minutes, expected):
    cfg = compose_run(
        *ACCUMULATING,
        "train.max_steps=3",
        f"train.checkpoint_every_minutes={minutes}",
        "train.keep_last_checkpoints=10",
        "train.keep_checkpoint=true",
    )
    folder = run(cfg).run_dir / "checkpoint"
    assert [int(d.name.removeprefix("step-")) for d in checkpoint.step_directories(folder)] == expected
