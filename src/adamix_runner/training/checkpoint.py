"""Resumable training state, written so that a crash never leaves a checkpoint that load would take half-written.

Layout of `directory/`: `trainable.safetensors` (what trains), `state.pt` (optimizer, scheduler, router
generators, every rank's RNG states, the fp16 GradScaler; tensors and plain containers only, so
`torch.load(weights_only=True)` reads it),
`progress.json` (the loop's counters) and a `complete` marker written last.

A save writes everything into the sibling `<name>.tmp`, moves the previous checkpoint aside to `<name>.old`,
renames the new one into place and only then deletes the old one. A directory cannot be renamed over a non-empty
one, hence the two renames; a crash between them leaves `<name>.old`, which load falls back to.

`restore` puts the newest step checkpoint back into a training run, after checking that it fits the model and that
every DDP rank continues the same one.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from safetensors.torch import load_file, save_file

from adamix_runner.errors import UserError
from adamix_runner.run_folder import STEP_PREFIX

WEIGHTS_FILE = "trainable.safetensors"
STATE_FILE = "state.pt"
PROGRESS_FILE = "progress.json"
COMPLETE_MARKER = "complete"
BEST_PREFIX = "best::"  # the best evaluated weights, saved beside the trainable ones


@dataclass
class Checkpoint:
    """Everything needed to continue a run exactly where it stopped."""

    trainable: dict[str, torch.Tensor]
    optimizer_state: dict
    scheduler_state: dict
    router_state: dict
    progress: dict
    rng: dict
    rng_per_rank: list[dict] | None = None
    scaler_state: dict | None = None

    def rng_of_rank(self, rank: int) -> dict:
        """This rank's RNG states (rank 0's in checkpoints written before they were kept per rank)."""
        if self.rng_per_rank is None or rank >= len(self.rng_per_rank):
            return self.rng
        return self.rng_per_rank[rank]


def rng_state() -> dict[str, Any]:
    """Python, numpy and torch RNG states as tensors and plain containers (loadable with weights_only)."""
    _, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Put back the RNG states of :func:`rng_state`, so that the next random draws equal the saved run's."""
    random.setstate(state["python"])
    saved = state["numpy"]
    keys = saved["keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, saved["pos"], saved["has_gauss"], saved["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _siblings(directory: Path) -> tuple[Path, Path]:
    return directory.with_name(directory.name + ".tmp"), directory.with_name(directory.name + ".old")


def save_checkpoint(
    directory: Path,
    *,
    trainable: dict[str, torch.Tensor],
    optimizer_state: dict,
    scheduler_state: dict,
    router_state: dict,
    progress: dict,
    rng_per_rank: list[dict] | None = None,
    scaler_state: dict | None = None,
) -> None:
    """Write a complete checkpoint to `directory`, replacing the previous one atomically. `rng_per_rank`: every
    rank's :func:`rng_state` (default: this process's alone)."""
    directory = Path(directory)
    staging, previous = _siblings(directory)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    save_file({name: tensor.detach().cpu().contiguous() for name, tensor in trainable.items()}, staging / WEIGHTS_FILE)
    ranks = rng_per_rank or [rng_state()]
    state = {"optimizer": optimizer_state, "scheduler": scheduler_state, "router": router_state, "rng": ranks[0]}
    state["rng_per_rank"] = ranks
    if scaler_state is not None:
        state["scaler"] = scaler_state
    torch.save(state, staging / STATE_FILE)
    (staging / PROGRESS_FILE).write_text(json.dumps(progress, indent=1))
    for name in (WEIGHTS_FILE, STATE_FILE, PROGRESS_FILE):
        _fsync(staging / name)
    (staging / COMPLETE_MARKER).touch()
    _fsync(staging)
    if directory.exists():
        shutil.rmtree(previous, ignore_errors=True)
        directory.rename(previous)
    staging.rename(directory)
    _fsync(directory.parent)
    shutil.rmtree(previous, ignore_errors=True)


def _read(path: Path, reader):
    """Read one checkpoint file; any failure is a ValueError that names the file."""
    try:
        return reader(path)
    except Exception as error:
        raise ValueError(
            f"Checkpoint file {path} is unreadable ({type(error).__name__}: {error}); it is truncated or corrupt. "
            f"Remove {path.parent} to start this run over."
        ) from error


def _load_state(path: Path) -> dict:
    state = torch.load(path, map_location="cpu", weights_only=True)
    missing = {"optimizer", "scheduler", "router", "rng"} - set(state)
    if missing:
        raise KeyError(f"missing entries {sorted(missing)}")
    return state


def load_checkpoint(directory: Path) -> Checkpoint | None:
    """The checkpoint in `directory` (or the one a crash left moved aside); None when there is none complete."""
    directory = Path(directory)
    _, previous = _siblings(directory)
    found = next((d for d in (directory, previous) if (d / COMPLETE_MARKER).is_file()), None)
    if found is None:
        return None
    trainable = _read(found / WEIGHTS_FILE, load_file)
    state = _read(found / STATE_FILE, _load_state)
    progress = _read(found / PROGRESS_FILE, lambda path: json.loads(path.read_text()))
    return Checkpoint(
        trainable=trainable,
        optimizer_state=state["optimizer"],
        scheduler_state=state["scheduler"],
        router_state=state["router"],
        progress=progress,
        rng=state["rng"],
        rng_per_rank=state.get("rng_per_rank"),
        scaler_state=state.get("scaler"),
    )


DISK_MARGIN_BYTES = 64 * 2**20


def step_directories(root: Path) -> list[Path]:
    """The step checkpoints under `root`, oldest first (staging and moved-aside folders excluded)."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [d for d in root.iterdir() if d.is_dir() and d.name.startswith(STEP_PREFIX) and d.suffix == ""]
    return sorted(found, key=lambda d: d.name)


def estimated_bytes(trainable: dict[str, torch.Tensor], optimizer_state: dict) -> int:
    """What one checkpoint will take on disk: the weights plus the optimizer's tensors."""
    tensors = list(trainable.values())
    for entry in optimizer_state.get("state", {}).values():
        tensors += [value for value in entry.values() if isinstance(value, torch.Tensor)]
    return sum(t.numel() * t.element_size() for t in tensors)


def ensure_free_space(root: Path, needed: int) -> None:
    """Refuse to start a checkpoint that the disk cannot hold, instead of leaving a truncated one."""
    root.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(root).free
    if free < needed + DISK_MARGIN_BYTES:
        raise OSError(
            f"not enough free disk space for a checkpoint in {root}: it needs about {needed / 2**20:.0f} MiB "
            f"(+{DISK_MARGIN_BYTES // 2**20} MiB margin), {free / 2**20:.0f} MiB are free. Free some space or "
            "set output_root= to another disk; the previous checkpoints are intact."
        )


def save_step(root: Path, step: int, keep: int, **parts) -> Path:
    """Save the checkpoint of `step` under `root` and keep only the newest `keep` of them."""
    root = Path(root)
    ensure_free_space(root, estimated_bytes(parts["trainable"], parts["optimizer_state"]))
    directory = root / f"{STEP_PREFIX}{step:08d}"
    save_checkpoint(directory, **parts)
    for old in step_directories(root)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return directory


def load_latest(root: Path) -> tuple[Checkpoint, Path] | tuple[None, None]:
    """The newest complete checkpoint under `root`, and its folder."""
    for directory in reversed(step_directories(root)):
        found = load_checkpoint(directory)
        if found is not None:
            return found, directory
    return None, None


def _check_fits(saved: Checkpoint, current: dict[str, torch.Tensor], folder: Path) -> None:
    """Names and shapes must match exactly before anything is copied: `copy_` would broadcast `[1, n]` into
    `[4, n]` silently, and a shape that cannot broadcast would fail halfway through the load."""
    expected = set(current) | {BEST_PREFIX + name for name in current}
    unexpected = set(saved.trainable) - expected
    missing = set(current) - set(saved.trainable)
    if unexpected or missing:
        raise UserError(
            f"Checkpoint {folder} does not fit this model (missing {sorted(missing)[:3]}, "
            f"unexpected {sorted(unexpected)[:3]}); remove it or use another output_root."
        )
    for key, tensor in saved.trainable.items():
        name = key.removeprefix(BEST_PREFIX)
        if tuple(tensor.shape) != tuple(current[name].shape):
            raise UserError(
                f"Checkpoint {folder} does not fit this model: {key} has shape {tuple(tensor.shape)}, "
                f"the model's is {tuple(current[name].shape)}; remove it or use another output_root."
            )


def _same_on_every_rank(step: int, world_size: int, accelerator: Accelerator, folder) -> None:
    """Every rank must continue the same checkpoint with the same number of processes: a node that does not see
    the checkpoint (a node-local output_root) would start at step 0 and hang the others at the end."""
    if world_size != accelerator.num_processes:
        raise UserError(
            f"the checkpoint {folder} was written by {world_size} processes "
            f"and this run has {accelerator.num_processes}: the data shards and per-rank RNG states would differ. "
            f"Resume with {world_size} processes, or overwrite=true to start afresh."
        )
    if accelerator.num_processes == 1:
        return
    steps = accelerator.gather(torch.tensor([step], device=accelerator.device)).tolist()
    if len(set(steps)) > 1:
        raise UserError(
            f"the ranks found different checkpoints to resume (steps {steps}): every node must see the same "
            "output_root; put it on a shared filesystem."
        )


def restore(setup, optimizer, scheduler) -> tuple[dict, dict[str, torch.Tensor], str | None]:
    """Load the newest complete checkpoint under `setup.checkpoint_dir` into the loop's trainable parameters,
    optimizer, scheduler, router and GradScaler (`setup`: the loop's `LoopSetup`).

    Returns (the loop's counters, best weights, checkpoint folder); ({}, {}, None) when there is none, so that
    the counters start at their defaults. The data loaders own their generators (run.py), so restoring the global
    RNG states here is exact whether the checkpoint was taken mid-epoch or at its end; under DDP each rank restores
    its own.
    """
    accelerator = setup.accelerator
    try:
        saved, folder = load_latest(setup.checkpoint_dir)
    except ValueError as error:
        raise UserError(str(error)) from error
    if saved is None:
        _same_on_every_rank(0, accelerator.num_processes, accelerator, setup.checkpoint_dir)
        return {}, {}, None
    progress = dict(saved.progress)
    written_by = progress.pop("world_size", accelerator.num_processes)  # not recorded before per-rank states
    _same_on_every_rank(progress["global_step"], written_by, accelerator, folder)
    current = dict(setup.params)
    _check_fits(saved, current, folder)
    with torch.no_grad():
        for name, param in current.items():
            param.copy_(saved.trainable[name])
    optimizer.load_state_dict(saved.optimizer_state)
    scheduler.load_state_dict(saved.scheduler_state)
    setup.router.load_state_dict(saved.router_state)
    if saved.scaler_state is not None and accelerator.scaler is not None:
        accelerator.scaler.load_state_dict(saved.scaler_state)
    restore_rng(saved.rng_of_rank(accelerator.process_index))
    best = {k[len(BEST_PREFIX) :]: v for k, v in saved.trainable.items() if k.startswith(BEST_PREFIX)}
    return progress, best, str(folder)
