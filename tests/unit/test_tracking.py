"""Trackers: JSONL accumulates across resumes, the composite fans out, the console renders, wandb runs offline."""

from __future__ import annotations

import io
import json
import sys
from types import SimpleNamespace

import pytest
from rich.console import Console as RichConsole

from adamix_runner import tracking
from adamix_runner.errors import UserError


def _recording_console() -> tracking.Console:
    return tracking.Console(RichConsole(file=io.StringIO(), record=True, width=120))


def test_jsonl_lines_parse_and_accumulate_across_trackers(tmp_path):
    first = tracking.JsonlTracker(tmp_path)
    first.log({"train/loss": 0.5}, step=1)
    first.close("failed")
    second = tracking.JsonlTracker(tmp_path)
    second.log({"dev/accuracy": 0.75, "train/lr": 1e-3}, step=2)
    second.close("completed")
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2]
    assert lines[0]["train/loss"] == 0.5 and lines[1]["dev/accuracy"] == 0.75
    assert all(isinstance(line["time"], float) for line in lines)


def test_jsonl_line_is_on_disk_before_close(tmp_path):
    tracker = tracking.JsonlTracker(tmp_path)
    tracker.log({"dev/f1": 0.5}, step=3)
    assert json.loads((tmp_path / "metrics.jsonl").read_text())["dev/f1"] == 0.5
    tracker.close("completed")


class _Recorder:
    def __init__(self):
        self.logged, self.closed = [], []

    def log(self, metrics, step):
        self.logged.append((dict(metrics), step))

    def close(self, status):
        self.closed.append(status)


def test_composite_fans_out_and_closes_all_even_after_a_failure():
    class Failing(_Recorder):
        def close(self, status):
            super().close(status)
            raise RuntimeError("boom")

    failing, recorder = Failing(), _Recorder()
    composite = tracking.CompositeTracker([failing, recorder])
    composite.log({"dev/accuracy": 1.0}, step=4)
    assert failing.logged == recorder.logged == [({"dev/accuracy": 1.0}, 4)]
    with pytest.raises(RuntimeError, match="boom"):
        composite.close("failed")
    assert recorder.closed == ["failed"]
    assert composite.console is None


def test_build_tracker_kinds(tmp_path):
    tracker = tracking.build_tracker(["console", "jsonl", "jsonl"], tmp_path, {})
    assert [type(t) for t in tracker.trackers] == [tracking.Console, tracking.JsonlTracker]
    assert tracker.console is tracker.trackers[0]
    tracker.close("completed")
    with pytest.raises(UserError, match="tensorboard"):
        tracking.build_tracker(["tensorboard"], tmp_path, {})


def test_console_config_tree_and_results_table():
    console = _recording_console()
    console.print_config_tree({"task": {"name": "mrpc"}, "peft": {"adapter_dim": 16, "num_experts": 4}, "seed": 0})
    console.print_results_table([("dev/accuracy", "0.8750"), ("#params (inference)", "0.89M")], title="mrpc")
    text = console.console.export_text()
    for expected in ("task", "name: 'mrpc'", "adapter_dim: 16", "num_experts: 4", "seed: 0"):
        assert expected in text
    assert "dev/accuracy" in text and "0.8750" in text and "0.89M" in text


def test_console_shows_a_runs_parameters_and_summary_and_a_composite_without_one_shows_nothing():
    counts = SimpleNamespace(trainable=1234, inference=5678, backbone=1000000, head=42)
    record = {
        "status": "completed",
        "task": "mrpc",
        "model": "tiny-bert",
        "metrics": {"validation/accuracy": 0.875},
        "params": {"trainable": 1234},
        "timing": {"train_s": 12.345},
    }
    console = _recording_console()
    shown = tracking.CompositeTracker([console])
    shown.show_config({"seed": 3})
    shown.show_parameters(counts)
    shown.show_summary(record)
    text = console.console.export_text()
    assert "seed: 3" in text and "parameters" in text and "completed: mrpc / tiny-bert" in text
    cells = [[cell.strip() for cell in line.split("│")[1:-1]] for line in text.splitlines() if line.startswith("│")]
    assert cells == [
        ["trainable", "1,234"],
        ["inference", "5,678"],
        ["backbone", "1,000,000"],
        ["head", "42"],
        ["validation/accuracy", "0.8750"],
        ["#params trainable", "1,234"],
        ["time train_s", "12.3 s"],
    ]
    quiet = tracking.CompositeTracker([_Recorder()])
    quiet.show_config({"seed": 3})
    quiet.show_parameters(counts)
    quiet.show_summary(record)
    assert quiet.trackers[0].logged == []


def test_console_log_prints_evaluations_not_training_steps():
    console = _recording_console()
    console.log({"train/loss": 0.123456}, step=10)
    console.log({"dev/accuracy": 0.8125, "train/loss": 0.5}, step=20)
    console.log({"dev/accuracy": 0.875}, step=-1)
    lines = console.console.export_text().splitlines()
    assert lines == ["step 20: dev/accuracy 0.8125", "final: dev/accuracy 0.875"]


def test_progress_off_a_terminal_prints_a_line_per_tenth():
    console = _recording_console()
    console.start_progress(total_steps=100, completed=20)
    for step in range(21, 101):
        console.update_progress(step, loss=0.5, lr=1e-3, samples_per_s=10.0)
    console.stop_progress()
    lines = console.console.export_text().splitlines()
    assert [line.split()[1] for line in lines] == [f"{s}/100" for s in range(30, 101, 10)]
    assert "loss 0.5000" in lines[0] and "samples/s" in lines[0]


def test_progress_bar_on_a_terminal():
    console = tracking.Console(RichConsole(file=io.StringIO(), record=True, force_terminal=True, width=150))
    console.start_progress(total_steps=4)
    console.update_progress(4, loss=0.25, lr=2e-4, samples_per_s=32.0)
    console.close("completed")
    text = console.console.export_text()
    assert "4/4" in text and "loss 0.2500" in text


@pytest.mark.parametrize("mode", ["offline", "disabled"])
def test_wandb_runs_without_network(tmp_path, monkeypatch, mode):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", mode)
    monkeypatch.setenv("WANDB_SILENT", "true")
    tracker = tracking.build_tracker(
        ["wandb"], tmp_path, {"seed": 0}, wandb_options={"project": "test", "tags": ["unit"]}
    )
    run = tracker.trackers[0].run
    finished = []
    original_finish = run.finish
    monkeypatch.setattr(run, "finish", lambda exit_code=None: finished.append(exit_code) or original_finish(exit_code))
    tracker.log({"train/loss": 0.5}, step=1)
    tracker.log({"final/dev/accuracy": 0.9}, step=-1)
    tracker.close("completed")
    assert finished == [0]
    offline_runs = list((tmp_path / "wandb").glob("offline-run-*"))
    if mode == "offline":
        assert len(offline_runs) == 1
        assert offline_runs[0].name.endswith(tracking.wandb_run_id(tmp_path))
    else:
        assert offline_runs == []


def test_wandb_missing_package_is_a_user_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)
    with pytest.raises(UserError, match="pip install wandb"):
        tracking.build_tracker(["jsonl", "wandb"], tmp_path, {})
