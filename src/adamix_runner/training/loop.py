"""The explicit training loop on Accelerate.

Supported: AdamW + linear warmup/decay, gradient accumulation and clipping, mixed precision and DDP through
Accelerate, the fused consistency pass (one forward over the duplicated batch, each copy routed to its own
experts), evaluation every epoch and/or every N steps, `select=last|best`, and resume from `checkpoint/`.
Not here: merging and the final evaluation (run.py), tokenization (tasks/).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator

from adamix_runner.training import checkpoint as ckpt
from adamix_runner.training.optim import build_optimizer, build_scheduler

BEST_PREFIX = "best::"


@dataclass
class LoopState:
    """Where training stands; saved in every checkpoint as `progress`."""

    epoch: int = 0
    batches_done: int = 0
    global_step: int = 0
    best_metric: float | None = None
    best_step: int = -1
    history: list[dict] = field(default_factory=list)


@dataclass
class LoopSetup:
    """Everything the loop needs besides the model: built by run.py from the config."""

    accelerator: Accelerator
    train_loader: object
    evaluate: Callable[[], dict[str, float]]
    params: list[tuple[str, torch.nn.Parameter]]
    router: object
    loss: Callable[[torch.Tensor, Mapping[str, torch.Tensor], int], tuple[torch.Tensor, dict]]
    num_views: int
    primary_metric: str
    checkpoint_dir: Path


def total_steps(train_cfg, batches_per_epoch: int) -> int:
    if train_cfg.max_steps > 0:
        return train_cfg.max_steps
    return train_cfg.epochs * -(-batches_per_epoch // train_cfg.grad_accum)


def _forward_loss(model, batch: Mapping[str, torch.Tensor], setup: LoopSetup):
    """One forward over `num_views` stacked copies of the batch, each copy routed to its own experts."""
    views = setup.num_views
    inputs = {key: value for key, value in batch.items() if key != "labels"}
    if views == 2:
        inputs = {key: torch.cat([value, value]) for key, value in inputs.items()}
    with setup.router.views(views):
        logits = model(**inputs).logits
    return setup.loss(logits, batch, views)


def _snapshot(params) -> dict[str, torch.Tensor]:
    return {name: param.detach().cpu().clone() for name, param in params}


def _save(setup: LoopSetup, optimizer, scheduler, state: LoopState, best: dict[str, torch.Tensor]) -> None:
    if not setup.accelerator.is_main_process:
        return
    trainable = _snapshot(setup.params)
    trainable.update({BEST_PREFIX + name: tensor for name, tensor in best.items()})
    ckpt.save_checkpoint(
        setup.checkpoint_dir,
        trainable=trainable,
        optimizer_state=optimizer.state_dict(),
        scheduler_state=scheduler.state_dict(),
        router_state=setup.router.state_dict(),
        progress=state.__dict__,
    )


def _restore(setup: LoopSetup, optimizer, scheduler) -> tuple[LoopState, dict[str, torch.Tensor]]:
    saved = ckpt.load_checkpoint(setup.checkpoint_dir)
    if saved is None:
        return LoopState(), {}
    current = {name: param for name, param in setup.params}
    expected = set(current) | {BEST_PREFIX + name for name in current}
    unexpected = set(saved.trainable) - expected
    missing = set(current) - set(saved.trainable)
    if unexpected or missing:
        raise ValueError(
            f"Checkpoint {setup.checkpoint_dir} does not fit this model (missing {sorted(missing)[:3]}, "
            f"unexpected {sorted(unexpected)[:3]}); remove it or use another output_root."
        )
    with torch.no_grad():
        for name, param in current.items():
            param.copy_(saved.trainable[name])
    optimizer.load_state_dict(saved.optimizer_state)
    scheduler.load_state_dict(saved.scheduler_state)
    setup.router.load_state_dict(saved.router_state)
    ckpt.restore_rng(saved.rng)
    best = {k[len(BEST_PREFIX) :]: v for k, v in saved.trainable.items() if k.startswith(BEST_PREFIX)}
    return LoopState(**saved.progress), best


def _evaluate(setup: LoopSetup, model, state: LoopState, tracker, best: dict) -> dict[str, torch.Tensor]:
    metrics = setup.evaluate()
    model.train()
    state.history.append({"step": state.global_step, **metrics})
    tracker.log(metrics, step=state.global_step)
    score = metrics[setup.primary_metric]
    if state.best_metric is None or score > state.best_metric:
        state.best_metric, state.best_step = score, state.global_step
        return _snapshot(setup.params)
    return best


def train(model, train_cfg, setup: LoopSetup, tracker, progress=None) -> LoopState:
    """Train `model` in place; with `select=best`, the best evaluated weights are loaded back at the end."""
    accelerator = setup.accelerator
    trainable = [param for _, param in setup.params]
    optimizer = build_optimizer(model, trainable, train_cfg.lr, train_cfg.weight_decay)
    steps = total_steps(train_cfg, len(setup.train_loader))
    scheduler = build_scheduler(optimizer, steps, train_cfg.warmup_ratio)
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, setup.train_loader, scheduler)
    state, best = _restore(setup, optimizer, scheduler)
    if progress is not None:
        progress.start_progress(steps, completed=state.global_step)
    model.train()
    running, batches_since_log = torch.zeros((), device=accelerator.device), 0
    samples, started = 0, time.perf_counter()
    while state.global_step < steps:
        loader.set_epoch(state.epoch)
        batches = accelerator.skip_first_batches(loader, state.batches_done) if state.batches_done else loader
        for batch in batches:
            with accelerator.accumulate(model):
                loss, _ = _forward_loss(model, batch, setup)
                accelerator.backward(loss)
                if accelerator.sync_gradients and train_cfg.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(trainable, train_cfg.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            state.batches_done += 1
            running += loss.detach()
            batches_since_log += 1
            samples += len(batch["labels"])
            if not accelerator.sync_gradients:
                continue
            state.global_step += 1
            if state.global_step % train_cfg.log_every_steps == 0 or state.global_step == steps:
                elapsed = time.perf_counter() - started
                loss_value = running.item() / batches_since_log
                lr = scheduler.get_last_lr()[0]
                tracker.log({"train/loss": loss_value, "train/lr": lr}, step=state.global_step)
                if progress is not None:
                    progress.update_progress(state.global_step, loss_value, lr, samples / max(elapsed, 1e-9))
                running.zero_()
                batches_since_log = 0
            if train_cfg.eval_every_steps and state.global_step % train_cfg.eval_every_steps == 0:
                best = _evaluate(setup, model, state, tracker, best)
            if train_cfg.checkpoint_every_steps and state.global_step % train_cfg.checkpoint_every_steps == 0:
                _save(setup, optimizer, scheduler, state, best)
            if state.global_step >= steps:
                break
        if state.batches_done == len(loader):
            state.epoch, state.batches_done = state.epoch + 1, 0
            if train_cfg.eval_every_epoch:
                best = _evaluate(setup, model, state, tracker, best)
            _save(setup, optimizer, scheduler, state, best)
    if progress is not None:
        progress.stop_progress()
    if train_cfg.select == "best" and best:
        with torch.no_grad():
            for name, param in setup.params:
                param.copy_(best[name])
    return state
