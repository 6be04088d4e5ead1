"""Faults: SIGKILL and SIGINT mid-run resume to the uninterrupted result; sweeps isolate failures; NaN; disk."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import adamix_runner.pipelines.classification as classification
import adamix_runner.run as run_module
from adamix_runner.errors import UserError
from adamix_runner.run import run
from adamix_runner.training import checkpoint
from tests.conftest import FIXTURES

TRAINING = [
    "task=mrpc",
    f"task.data_dir={FIXTURES / 'glue' / 'mrpc'}",
    "model=tiny-bert",
    "train.epochs=8",
    "train.batch_size=8",
    "train.log_every_steps=1",
    "train.checkpoint_every_steps=2",
    "train.keep_last_checkpoints=2",
    "logger=none",
]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run, in process."""
    from tests.conftest import compose_config

    root = tmp_path_factory.mktemp("reference")
    return run(compose_config(*TRAINING, f"output_root={root}"))


def _start(root: Path) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "adamix_runner", *TRAINING, f"output_root={root}"]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_checkpoint(root: Path, process: subprocess.Popen, timeout: float = 120) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = sorted(root.glob("runs/*/*/*/*/seed0/checkpoint/step-*/complete"))
        if found:
            return found[-1].parent
        assert process.poll() is None, process.communicate()
        time.sleep(0.02)
    raise AssertionError("no checkpoint appeared")


def _assert_same_result(folder: Path, reference) -> None:
    record = json.loads((folder / "results.json").read_text())
    assert record["status"] == "completed"
    assert record["metrics"] == reference.record["metrics"]
    for name in ("adaptation.safetensors", "head.safetensors"):
        ours = load_file(folder / "adapter" / name)
        theirs = load_file(reference.run_dir / "adapter" / name)
        assert ours.keys() == theirs.keys()
        assert all(torch.equal(ours[key], theirs[key]) for key in ours)


def _run_to_end(root: Path) -> Path:
    done = _start(root)
    _, stderr = done.communicate(timeout=300)
    assert done.returncode == 0, stderr
    return next(root.glob("runs/*/*/*/*/seed0"))


@pytest.mark.slow  # over 20 s (subprocesses); .ci/run runs make test-slow
def test_sigkill_mid_run_then_rerun_gives_the_uninterrupted_result(tmp_path, reference):
    process = _start(tmp_path)
    _wait_for_checkpoint(tmp_path, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    folder = next(tmp_path.glob("runs/*/*/*/*/seed0"))
    assert not (folder / "results.json").exists()
    assert len(checkpoint.step_directories(folder / "checkpoint")) <= 2
    assert _run_to_end(tmp_path) == folder
    _assert_same_result(folder, reference)


@pytest.mark.slow  # over 20 s (subprocesses); .ci/run runs make test-slow
def test_sigint_saves_a_checkpoint_reports_interrupted_and_resumes(tmp_path, reference):
    process = _start(tmp_path)
    _wait_for_checkpoint(tmp_path, process)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGINT, stderr
    assert "interrupted: SIGINT at step" in stderr
    folder = next(tmp_path.glob("runs/*/*/*/*/seed0"))
    record = json.loads((folder / "results.json").read_text())
    assert record["status"] == "interrupted"
    assert Path(record["checkpoint"]).name == f"step-{record['step']:08d}"
    assert _run_to_end(tmp_path) == folder
    _assert_same_result(folder, reference)


@pytest.mark.slow  # over 20 s (subprocesses); .ci/run runs make test-slow
def test_rerunning_a_completed_run_reports_it_and_exits_0(tmp_path, reference):
    folder = _run_to_end(tmp_path)
    before = (folder / "results.json").read_text()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "adamix_runner", *TRAINING[:-1], f"output_root={tmp_path}"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"already completed: {folder}" in done.stdout
    assert (folder / "results.json").read_text() == before


def test_a_failing_sweep_point_is_recorded_and_the_others_still_run(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "adamix_runner", "-m", *TRAINING[:3], "train.max_steps=2", "logger=none"]
    command += ["peft.adapter_dim=4,0,8", f"output_root={tmp_path}"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    assert "failed: " in done.stdout and "peft.adapter_dim=0" in done.stdout
    assert "1 sweep point(s) failed" in done.stdout
    records = [json.loads(p.read_text()) for p in tmp_path.glob("runs/*/*/*/*/seed0/results.json")]
    assert sorted(r["status"] for r in records) == ["completed", "completed", "failed"]
    failed = next(r for r in records if r["status"] == "failed")
    assert "peft.adapter_dim must be > 0" in failed["error"]


def _nan_at_step(step: int):
    calls = {"n": 0}
    original = classification.adamix_loss

    def loss(*args, **kwargs):
        value, parts = original(*args, **kwargs)
        calls["n"] += 1
        return (value * float("nan") if calls["n"] == step else value), parts

    return loss


def test_a_nan_loss_stops_the_run_naming_the_step_and_writes_no_weights(compose_run, monkeypatch):
    monkeypatch.setattr(classification, "adamix_loss", _nan_at_step(5))
    cfg = compose_run(*TRAINING[:-3], "train.epochs=2", "train.checkpoint_every_steps=2", "train.log_every_steps=10")
    with pytest.raises(UserError, match=r"non-finite loss at step 5; last good checkpoint: .*step-00000004"):
        run(cfg)
    folder = run_module.run_dir(cfg)
    assert json.loads((folder / "results.json").read_text())["status"] == "failed"
    assert not (folder / "adapter").exists()
    steps = [d.name for d in checkpoint.step_directories(folder / "checkpoint")]
    assert steps == ["step-00000004"]
    weights = load_file(folder / "checkpoint" / "step-00000004" / "trainable.safetensors")
    assert all(torch.isfinite(t).all() for t in weights.values())


def test_skip_nonfinite_skips_the_bad_step_and_completes(compose_run, monkeypatch):
    monkeypatch.setattr(classification, "adamix_loss", _nan_at_step(3))
    result = run(compose_run(*TRAINING[:-3], "train.max_steps=6", "train.skip_nonfinite=true"))
    rows = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert rows[-2]["train/skipped"] == 1
    weights = load_file(result.run_dir / "adapter" / "adaptation.safetensors")
    assert all(torch.isfinite(t).all() for t in weights.values())


def test_a_full_disk_fails_clearly_and_leaves_the_previous_checkpoint_intact(compose_run, monkeypatch):
    cfg = compose_run(
        *TRAINING[:-3], "train.epochs=2", "train.checkpoint_every_steps=2", "train.keep_last_checkpoints=1"
    )
    real, calls = checkpoint.shutil.disk_usage, {"n": 0}

    def full_from_the_second_checkpoint(path):
        calls["n"] += 1
        usage = real(path)
        return usage if calls["n"] == 1 else usage._replace(free=1024)

    monkeypatch.setattr(checkpoint.shutil, "disk_usage", full_from_the_second_checkpoint)
    with pytest.raises(
        UserError, match=r"not enough free disk space for a checkpoint.*previous checkpoints are intact"
    ):
        run(cfg)
    folder = run_module.run_dir(cfg) / "checkpoint"
    assert [d.name for d in folder.iterdir()] == ["step-00000002"]
    kept = checkpoint.load_checkpoint(folder / "step-00000002")
    assert kept is not None and kept.progress["global_step"] == 2
    assert all(torch.isfinite(t).all() for t in kept.trainable.values())
