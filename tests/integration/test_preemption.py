"""A SLURM time limit as submitit delivers it (USR2 to the job's process, submitit's own handler installed): the run
finishes the optimizer step in flight, writes a checkpoint, records `interrupted`, and only then lets submitit
requeue it; the requeued job resumes to exactly the uninterrupted result.

One test goes through Hydra's `submitit_local` launcher for real: the controller, the pickled job, submitit's
signal handlers and its requeue (exit code 144, the job started again by the controller). Only the moment of the
signal is the test's: a `sitecustomize` on the job's PYTHONPATH sends USR2 to the job during micro-batch 5 of its
first attempt, as the controller would at `timeout_min * 60 - signal_delay_s`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from adamix_runner.run import run
from adamix_runner.training import loop
from adamix_runner.training.signals import Interrupted
from tests.conftest import FIXTURES

TRAIN = [
    "task=mrpc",
    f"task.data_dir={FIXTURES / 'glue' / 'mrpc'}",
    "model=tiny-bert",
    "train.batch_size=8",
    "train.max_steps=8",
    "train.log_every_steps=1",
    "train.checkpoint_every_minutes=0",  # the only checkpoint before the end is the one the signal writes
    "data.max_eval_samples=16",
]
SIGNAL_AT = 5  # micro-batch (= optimizer step, grad_accum 1) during which USR2 arrives

HOOK = textwrap.dedent(
    """
    import os, signal
    from pathlib import Path

    marker = Path(os.environ["ADAMIX_TEST_USR2_MARKER"])
    if "SUBMITIT_LOCAL_JOB_ID" in os.environ and not marker.exists():  # the job's first attempt only
        from adamix_runner.training import loop

        original, calls = loop._step, []

        def step(*args, **kwargs):
            calls.append(1)
            if len(calls) == int(os.environ["ADAMIX_TEST_USR2_AT"]):
                marker.write_text(str(os.getpid()))
                os.kill(os.getpid(), signal.SIGUSR2)
            return original(*args, **kwargs)

        loop._step = step
    """
)


def _folder(root: Path) -> Path:
    (results,) = root.glob("runs/*/*/*/*/seed0/results.json")
    return results.parent


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    head = {f"head/{key}": value for key, value in load_file(folder / "adapter" / "head.safetensors").items()}
    return {**load_file(folder / "adapter" / "adaptation.safetensors"), **head}


def _train_steps(folder: Path) -> list[int]:
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    return [row["step"] for row in rows if "train/loss" in row]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    from adamix_runner.config.compose import compose_config

    root = tmp_path_factory.mktemp("uninterrupted")
    return run(compose_config(*TRAIN, "logger=none", f"output_root={root}"))


def _signal_during_step(number: int, signum: int = signal.SIGUSR2):
    original, calls = loop._step, []

    def step(*args, **kwargs):
        calls.append(1)
        if len(calls) == number:
            os.kill(os.getpid(), signum)
        return original(*args, **kwargs)

    return step


def test_usr2_with_submitits_handler_checkpoints_records_interrupted_then_hands_over(
    compose_run, tmp_path, monkeypatch, uninterrupted
):
    """submitit's USR2 handler (requeue, then sys.exit) runs only after the checkpoint and the record exist."""
    seen = []

    def submitit_requeue(signum, frame):
        record = json.loads((_folder(tmp_path) / "results.json").read_text())
        seen.append((signal.Signals(signum).name, record["status"], record["step"]))
        raise SystemExit(-1)

    cfg = compose_run(*TRAIN)
    monkeypatch.setattr(loop, "_step", _signal_during_step(SIGNAL_AT))
    previous = signal.signal(signal.SIGUSR2, submitit_requeue)
    try:
        with pytest.raises(Interrupted) as stopped:
            run(cfg)
        assert signal.getsignal(signal.SIGUSR2) is submitit_requeue  # restored after the run
        with pytest.raises(SystemExit):
            stopped.value.hand_over()
    finally:
        signal.signal(signal.SIGUSR2, previous)
    assert (stopped.value.step, stopped.value.exit_code) == (SIGNAL_AT, 128 + signal.SIGUSR2)
    assert stopped.value.checkpoint.endswith(f"step-{SIGNAL_AT:08d}")
    assert seen == [("SIGUSR2", "interrupted", SIGNAL_AT)]

    monkeypatch.undo()
    resumed = run(compose_run(*TRAIN))
    assert resumed.record["resumed_from"]["step"] == SIGNAL_AT
    assert resumed.record["metrics"] == uninterrupted.record["metrics"]
    assert _train_steps(resumed.run_dir) == list(range(1, 9))  # no step lost, none done twice


def test_usr2_without_submitit_stops_like_sigterm(compose_run, tmp_path, monkeypatch):
    """A plain `sbatch --signal=USR2@...` job: the same stop, exit code 140, nothing to hand over."""
    monkeypatch.setattr(loop, "_step", _signal_during_step(3))
    with pytest.raises(Interrupted) as stopped:
        run(compose_run(*TRAIN))
    assert (stopped.value.step, stopped.value.exit_code, stopped.value.handover) == (3, 140, None)
    record = json.loads((_folder(tmp_path) / "results.json").read_text())
    assert (record["status"], record["step"]) == ("interrupted", 3)


@pytest.mark.slow
def test_a_time_limit_through_submitit_local_requeues_and_resumes_to_the_uninterrupted_result(tmp_path, uninterrupted):
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(HOOK)
    marker, root = tmp_path / "signalled", tmp_path / "out"
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")]),
        "ADAMIX_TEST_USR2_MARKER": str(marker),
        "ADAMIX_TEST_USR2_AT": str(SIGNAL_AT),
    }
    launcher = ["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10"]
    command = [sys.executable, "-m", "adamix_runner", "-m", *launcher, *TRAIN, "logger=none", f"output_root={root}"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert marker.exists(), "the first attempt was never signalled"

    logs = "\n".join(path.read_text() for path in (root / ".submitit").glob("*/*_log.*"))
    assert f"interrupted: SIGUSR2 at step {SIGNAL_AT}; checkpoint " in logs
    assert "Requeued job" in logs  # submitit's own requeue, after our checkpoint
    folder = _folder(root)
    record = json.loads((folder / "results.json").read_text())
    assert record["status"] == "completed"
    assert (record["resumed_from"]["step"], record["resumed_from"]["checkpoint"]) == (
        SIGNAL_AT,
        str(folder / "checkpoint" / f"step-{SIGNAL_AT:08d}"),
    )
    assert record["metrics"] == uninterrupted.record["metrics"]
    theirs = _weights(uninterrupted.run_dir)
    assert all(torch.equal(tensor, theirs[name]) for name, tensor in _weights(folder).items())
    assert _train_steps(folder) == list(range(1, 9))
