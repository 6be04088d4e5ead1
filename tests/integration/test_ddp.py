"""One run on two CPU processes (torchrun, gloo DDP) against one process with the same global batch.

The launch is the real CLI: this file, run as a script under torchrun, calls ``adamix_runner.cli.run.main`` with
``Router.draw`` wrapped to record every training draw of its rank. Dropout is switched off, so that the two runs
differ only by the gradient all-reduce: the same seed gives the same sample order (the seedable sampler) and the same
expert draws on every rank, and each optimizer step sees the same global batch of 8 (2 x 4 against 1 x 8).

All of it is `slow` (`make test-slow`, which `.ci/run` runs): two torchrun launches take about a minute, which kept
`make test` above 8 minutes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

pytestmark = pytest.mark.slow

ROUTING_LOG = "ADAMIX_TEST_ROUTING_LOG"
NAN_ON_RANK = "ADAMIX_TEST_NAN_ON_RANK"  # this rank's second training batch gets a NaN loss
SIGTERM_AT = "ADAMIX_TEST_SIGTERM_AT"  # rank 1 gets SIGTERM during this micro-batch, rank 0 one second later
DIVERGE = "ADAMIX_TEST_DIVERGE"  # each rank draws differently many random numbers per batch, as uneven padding does
FIXTURE = Path(__file__).parents[1] / "fixtures" / "glue" / "mrpc"
COMMON = [
    "task=mrpc",
    f"task.data_dir={FIXTURE}",
    "model=tiny-bert",
    "+model.architecture.hidden_dropout_prob=0.0",
    "+model.architecture.attention_probs_dropout_prob=0.0",
    "train.epochs=1",
    "train.log_every_steps=1",
    "train.cpu=true",
    "logger=none",
    "data.max_eval_samples=31",  # an uneven split: two ranks see 16 each, one padded; metrics must count 31
]
DROPOUT_ON = [override for override in COMMON if "dropout" not in override]  # tiny-bert's own 0.1
PER_RANK_BATCH, PROCESSES = 4, 2


def _probe() -> None:
    """Under torchrun: the real CLI, with this rank's training expert draws written to $ADAMIX_TEST_ROUTING_LOG."""
    from adamix_runner.adaptation import Router
    from adamix_runner.cli import run as cli

    draws: list[list[int]] = []
    original = Router.draw

    def recording(self, num_experts: int) -> list[int]:
        picked = original(self, num_experts)
        draws.append(picked)
        return picked

    Router.draw = recording
    if DIVERGE in os.environ:
        _diverge(int(os.environ["RANK"]))
    if SIGTERM_AT in os.environ:
        _signal_skewed(int(os.environ[SIGTERM_AT]), int(os.environ["RANK"]))
    if NAN_ON_RANK in os.environ and os.environ["RANK"] == os.environ[NAN_ON_RANK]:
        from adamix_runner.pipelines import classification

        original_loss, calls = classification.adamix_loss, []

        def nan_at_second_batch(*args, **kwargs):
            value, parts = original_loss(*args, **kwargs)
            calls.append(1)
            return (value * float("nan") if len(calls) == 2 else value), parts

        classification.adamix_loss = nan_at_second_batch
    try:
        cli.main()
    finally:
        rank = os.environ.get("RANK", "0")
        Path(os.environ[ROUTING_LOG], f"rank{rank}.json").write_text(json.dumps(draws))


def _diverge(rank: int) -> None:
    """The fixture's rows have one length, so both ranks would draw the same dropout randomness; with real data,
    dynamic padding gives each rank its own lengths and its generator its own state. Emulate that."""
    from adamix_runner.training import loop

    original = loop._step

    def step(*args, **kwargs):
        torch.rand(3 * rank)
        return original(*args, **kwargs)

    loop._step = step


def _signal_skewed(number: int, rank: int) -> None:
    """SIGTERM to rank 1 during its micro-batch `number`, to rank 0 one second after its own: the split that a
    signal landing between two ranks' checks makes."""
    import signal
    import threading

    from adamix_runner.training import loop

    original, calls = loop._step, []

    def step(*args, **kwargs):
        calls.append(1)
        if len(calls) == number:
            if rank == 1:
                os.kill(os.getpid(), signal.SIGTERM)
            else:
                threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGTERM)).start()
        return original(*args, **kwargs)

    loop._step = step


def _run_folder(root: Path) -> Path:
    (results,) = root.glob("runs/*/*/*/*/seed0/results.json")
    return results.parent


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return {
        **load_file(folder / "adapter" / "adaptation.safetensors"),
        **load_file(folder / "adapter" / "head.safetensors"),
    }


def _jsonl(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={PROCESSES}"]


def _launch(
    launcher: list[str], root: Path, logs: Path, *overrides: str, env: dict | None = None, common=COMMON, rc=0
) -> subprocess.CompletedProcess:
    """This file as a script under `launcher`, on the common run with `overrides`, writing under `root`."""
    env = {**os.environ, ROUTING_LOG: str(logs), "OMP_NUM_THREADS": "1", **(env or {})}
    command = [*launcher, __file__, *common, f"output_root={root}", *overrides]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert (done.returncode == 0) == (rc == 0), done.stdout[-3000:] + done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(two-process folder, one-process folder, routing log folder) of the same training with global batch 8."""
    logs = tmp_path_factory.mktemp("routing")
    ddp_root, single_root = tmp_path_factory.mktemp("ddp"), tmp_path_factory.mktemp("single")
    _launch(TORCHRUN, ddp_root, logs, f"train.batch_size={PER_RANK_BATCH}")
    for rank in range(PROCESSES):
        (logs / f"rank{rank}.json").rename(logs / f"ddp{rank}.json")
    _launch([sys.executable], single_root, logs, f"train.batch_size={PER_RANK_BATCH * PROCESSES}")
    return _run_folder(ddp_root), _run_folder(single_root), logs


def test_ranks_draw_the_same_experts(runs):
    _, _, logs = runs
    draws = [json.loads((logs / f"ddp{rank}.json").read_text()) for rank in range(PROCESSES)]
    assert len(draws[0]) > 0
    assert draws[0] == draws[1]


def test_ddp_runs_without_unused_parameters_and_completes(runs):
    """DDP runs with find_unused_parameters=False (Accelerate's default): a trainable parameter without a gradient
    fails the step after it ("Expected to have finished reduction in the prior iteration"). So several optimizer
    steps completing is the check; tests/unit/test_hardening.py checks the gradients themselves, per method."""
    ddp, _, _ = runs
    record = json.loads((ddp / "results.json").read_text())
    assert record["status"] == "completed"
    assert record["config"]["train"]["batch_size"] == PER_RANK_BATCH
    assert len([row for row in _jsonl(ddp) if "train/loss" in row]) >= 2


def test_two_processes_match_one_process_with_the_same_global_batch(runs):
    ddp, single, logs = runs
    assert json.loads((logs / "ddp0.json").read_text()) == json.loads((logs / "rank0.json").read_text())
    ddp_weights, single_weights = _weights(ddp), _weights(single)
    assert ddp_weights.keys() == single_weights.keys()
    for name, tensor in ddp_weights.items():
        torch.testing.assert_close(tensor, single_weights[name], atol=1e-5, rtol=1e-4, msg=name)
    ddp_loss = [row["train/loss"] for row in _jsonl(ddp) if "train/loss" in row]
    single_loss = [row["train/loss"] for row in _jsonl(single) if "train/loss" in row]
    assert ddp_loss == pytest.approx(single_loss, abs=1e-5)
    ddp_metrics = json.loads((ddp / "results.json").read_text())["metrics"]
    single_metrics = json.loads((single / "results.json").read_text())["metrics"]
    assert ddp_metrics == pytest.approx(single_metrics, abs=1e-5)


def test_only_rank_zero_logs(runs):
    ddp, _, _ = runs
    train_steps = [row["step"] for row in _jsonl(ddp) if "train/loss" in row]
    finals = [row for row in _jsonl(ddp) if row["step"] == -1]
    assert train_steps == list(range(1, len(train_steps) + 1))
    assert len(finals) == 1


def test_a_nan_on_one_rank_is_skipped_by_every_rank(tmp_path):
    """skip_nonfinite decides for all ranks at once: a rank that skipped its backward alone would hang DDP."""
    overrides = [f"train.batch_size={PER_RANK_BATCH}", "train.skip_nonfinite=true"]
    _launch(TORCHRUN, tmp_path, tmp_path, *overrides, env={NAN_ON_RANK: "1"})
    folder = _run_folder(tmp_path)
    assert json.loads((folder / "results.json").read_text())["status"] == "completed"
    assert [row.get("train/skipped") for row in _jsonl(folder) if "train/loss" in row][:3] == [None, 1, 1]


def test_a_signal_on_one_rank_stops_every_rank_at_one_step_and_resumes_exactly_with_dropout(tmp_path):
    """Rank 1 is signalled at step 3, rank 0 a second later: both stop at step 3 with one checkpoint, the run reads
    `interrupted`, and the resumed run equals an uninterrupted one with dropout on (each rank's RNG restored)."""
    batch = f"train.batch_size={PER_RANK_BATCH}"
    reference, stopped = tmp_path / "reference", tmp_path / "stopped"
    diverge = {DIVERGE: "1"}
    _launch(TORCHRUN, reference, tmp_path, batch, common=DROPOUT_ON, env=diverge)
    done = _launch(TORCHRUN, stopped, tmp_path, batch, common=DROPOUT_ON, env={**diverge, SIGTERM_AT: "3"}, rc=1)
    assert done.stderr.count("interrupted: SIGTERM at step 3; checkpoint ") == PROCESSES, done.stderr[-3000:]
    folder = _run_folder(stopped)
    record = json.loads((folder / "results.json").read_text())
    assert (record["status"], record["step"]) == ("interrupted", 3)
    assert [path.name for path in (folder / "checkpoint").iterdir()] == ["step-00000003"]

    _launch(TORCHRUN, stopped, tmp_path, batch, common=DROPOUT_ON, env=diverge)
    resumed = json.loads((folder / "results.json").read_text())
    assert (resumed["status"], resumed["resumed_from"]["step"]) == ("completed", 3)
    assert resumed["runtime"] == {"mixed_precision": "no", "allow_tf32": False, "device": "cpu", "world_size": 2}
    expected = _weights(_run_folder(reference))
    assert all(torch.equal(tensor, expected[name]) for name, tensor in _weights(folder).items())


def test_compiled_regions_under_ddp_match_the_eager_ddp_run(runs, tmp_path):
    """train.compile=true compiles the layers before DDP wraps the model; the gradients all-reduce the same."""
    ddp, _, _ = runs
    _launch(TORCHRUN, tmp_path, tmp_path, f"train.batch_size={PER_RANK_BATCH}", "train.compile=true")
    compiled = _run_folder(tmp_path)
    compiled_weights, eager_weights = _weights(compiled), _weights(ddp)
    for name, tensor in compiled_weights.items():
        torch.testing.assert_close(tensor, eager_weights[name], atol=1e-5, rtol=1e-4, msg=name)


if __name__ == "__main__":
    _probe()
