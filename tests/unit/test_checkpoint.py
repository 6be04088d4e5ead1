"""Checkpoints round-trip exactly, survive a crash mid-write, and refuse corrupt files loudly."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from adamix_runner.training import checkpoint as ckpt


def _training_state(steps: int = 3):
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 / (step + 1))
    for _ in range(steps):
        model(torch.randn(8, 4)).pow(2).mean().backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
    generator = torch.Generator().manual_seed(7)
    return model, optimizer, scheduler, {"generator": generator.get_state()}


def _save(directory, model, optimizer, scheduler, router, progress):
    ckpt.save_checkpoint(
        directory,
        trainable={name: param.detach().clone() for name, param in model.named_parameters()},
        optimizer_state=optimizer.state_dict(),
        scheduler_state=scheduler.state_dict(),
        router_state=router,
        progress=progress,
    )


def test_round_trip(tmp_path):
    model, optimizer, scheduler, router = _training_state()
    progress = {"epoch": 1, "batches_done": 5, "global_step": 3, "best_metric": 0.5, "history": [{"step": 3}]}
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    np.random.randn()  # a cached Gaussian in numpy's state must survive too
    _save(tmp_path / "checkpoint", model, optimizer, scheduler, router, progress)
    expected = (torch.rand(3), np.random.rand(3), np.random.randn(), random.random())

    loaded = ckpt.load_checkpoint(tmp_path / "checkpoint")
    assert loaded is not None
    for name, param in model.named_parameters():
        torch.testing.assert_close(loaded.trainable[name], param.detach())
    optimizer_state = optimizer.state_dict()
    assert loaded.optimizer_state["param_groups"] == optimizer_state["param_groups"]
    for key, saved in optimizer_state["state"].items():
        assert loaded.optimizer_state["state"][key]["step"] == saved["step"] == 3
        torch.testing.assert_close(loaded.optimizer_state["state"][key]["exp_avg"], saved["exp_avg"])
    assert loaded.scheduler_state == scheduler.state_dict()
    assert torch.equal(loaded.router_state["generator"], router["generator"])
    assert loaded.progress == progress

    _, fresh_optimizer, fresh_scheduler, _ = _training_state(steps=0)
    fresh_optimizer.load_state_dict(loaded.optimizer_state)
    fresh_scheduler.load_state_dict(loaded.scheduler_state)
    assert fresh_scheduler.last_epoch == 3

    random.seed(99)
    np.random.seed(99)
    torch.manual_seed(99)
    ckpt.restore_rng(loaded.rng)
    again = (torch.rand(3), np.random.rand(3), np.random.randn(), random.random())
    assert torch.equal(again[0], expected[0])
    np.testing.assert_array_equal(again[1], expected[1])
    assert again[2:] == expected[2:]


def test_missing_or_incomplete_directory_gives_none(tmp_path):
    assert ckpt.load_checkpoint(tmp_path / "checkpoint") is None
    (tmp_path / "checkpoint").mkdir()
    (tmp_path / "checkpoint" / ckpt.WEIGHTS_FILE).write_bytes(b"")
    assert ckpt.load_checkpoint(tmp_path / "checkpoint") is None


def test_crash_mid_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    model, optimizer, scheduler, router = _training_state()
    directory = tmp_path / "checkpoint"
    _save(directory, model, optimizer, scheduler, router, {"global_step": 1})

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(ckpt.torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        _save(directory, model, optimizer, scheduler, router, {"global_step": 2})
    monkeypatch.undo()
    loaded = ckpt.load_checkpoint(directory)
    assert loaded is not None and loaded.progress == {"global_step": 1}

    _save(directory, model, optimizer, scheduler, router, {"global_step": 3})
    assert ckpt.load_checkpoint(directory).progress == {"global_step": 3}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]


def test_crash_between_the_renames_falls_back_to_the_old_checkpoint(tmp_path, monkeypatch):
    model, optimizer, scheduler, router = _training_state()
    directory = tmp_path / "checkpoint"
    _save(directory, model, optimizer, scheduler, router, {"global_step": 1})
    real_rename = type(directory).rename

    def rename(self, target):
        if self.name.endswith(".tmp"):
            raise OSError("power cut")
        return real_rename(self, target)

    monkeypatch.setattr(type(directory), "rename", rename)
    with pytest.raises(OSError, match="power cut"):
        _save(directory, model, optimizer, scheduler, router, {"global_step": 2})
    monkeypatch.undo()
    assert not directory.exists()
    assert ckpt.load_checkpoint(directory).progress == {"global_step": 1}


@pytest.mark.parametrize("name", [ckpt.WEIGHTS_FILE, ckpt.STATE_FILE, ckpt.PROGRESS_FILE])
def test_truncated_file_raises_value_error_naming_it(tmp_path, name):
    model, optimizer, scheduler, router = _training_state()
    directory = tmp_path / "checkpoint"
    _save(directory, model, optimizer, scheduler, router, {"global_step": 1})
    path = directory / name
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError, match=name):
        ckpt.load_checkpoint(directory)
