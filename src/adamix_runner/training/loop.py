"""The explicit training loop on Accelerate.

Supported: AdamW + linear warmup/decay, gradient accumulation and clipping, mixed precision and DDP through
Accelerate, the fused consistency pass (one forward over the duplicated batch, each copy routed to its own
experts), optional regional `torch.compile`, evaluation every epoch and/or every N steps, `select=last|best`, and
resume from `checkpoint/`.
Not here: merging and the final evaluation (run.py), tokenization (tasks/), writing a checkpoint to disk and
reading one back into the run (checkpoint.py).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import compile_regions, gather_object
from omegaconf import DictConfig

from adamix_runner.adaptation.mixture import ExpertLinear
from adamix_runner.errors import UserError
from adamix_runner.tracking import Console, Tracker
from adamix_runner.training import checkpoint as ckpt
from adamix_runner.training.optim import build_optimizer, build_scheduler
from adamix_runner.training.signals import Interrupted, StopSignals, agreed_stop

RESUMED_PREFIX = "resumed/"  # metrics.jsonl keys of the record that says where a run resumed


@dataclass
class LoopState:
    """Where training stands; saved in every checkpoint as `progress`."""

    epoch: int = 0
    batches_done: int = 0
    global_step: int = 0
    best_metric: float | None = None
    best_step: int = -1


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


def compile_model(model):
    """`torch.compile` with dynamic shapes (dynamic padding changes them every batch), one region per repeated
    layer (accelerate's regional compilation): each layer class compiles once instead of the whole graph."""
    return compile_regions(model, dynamic=True)


def _snapshot(params) -> dict[str, torch.Tensor]:
    return {name: param.detach().cpu().clone() for name, param in params}


class NonFiniteLoss(UserError):
    """A NaN/inf loss: the run stops before any weights from that step are saved."""


@dataclass
class _Run:
    """The mutable pieces of one training run, so that helpers need few arguments."""

    setup: LoopSetup
    train_cfg: DictConfig
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    state: LoopState
    best: dict[str, torch.Tensor]
    tracker: Tracker
    progress: Console | None
    signals: StopSignals
    steps: int
    running: torch.Tensor  # the sum of the losses since the last log line, on the device
    last_checkpoint: str | None = None
    batches_since_log: int = 0
    skipped: int = 0
    samples: int = 0
    started: float = field(default_factory=time.perf_counter)
    saved_at: float = field(default_factory=time.monotonic)
    finite_flags: list[tuple[int, torch.Tensor]] = field(default_factory=list)

    def save(self) -> None:
        """A checkpoint of the current state, written by the main process, never of non-finite weights. Every rank
        calls it at the same step: each rank's RNG states are gathered (dropout draws differ per rank)."""
        self.check_finite()
        accelerator = self.setup.accelerator
        rng = ckpt.rng_state()
        rng_per_rank = gather_object([rng]) if accelerator.num_processes > 1 else [rng]
        if not accelerator.is_main_process:
            return
        scaler = accelerator.scaler
        trainable = _snapshot(self.setup.params)
        trainable.update({ckpt.BEST_PREFIX + name: tensor for name, tensor in self.best.items()})
        try:
            folder = ckpt.save_step(
                self.setup.checkpoint_dir,
                self.state.global_step,
                self.train_cfg.keep_last_checkpoints,
                trainable=trainable,
                optimizer_state=self.optimizer.state_dict(),
                scheduler_state=self.scheduler.state_dict(),
                router_state=self.setup.router.state_dict(),
                progress={**self.state.__dict__, "world_size": accelerator.num_processes},
                rng_per_rank=rng_per_rank,
                scaler_state=None if scaler is None else scaler.state_dict(),
            )
        except OSError as error:
            raise UserError(str(error)) from error
        self.last_checkpoint = str(folder)

    def check_finite(self) -> None:
        """Look at the losses since the last check (one host sync, at logging/eval/checkpoint time only)."""
        if not self.finite_flags:
            return
        steps, flags = zip(*self.finite_flags, strict=True)
        self.finite_flags.clear()
        finite = torch.stack(flags)
        if bool(finite.all()):
            return
        step = steps[int((~finite).nonzero()[0])]
        raise NonFiniteLoss(
            f"non-finite loss at step {step}; last good checkpoint: {self.last_checkpoint or 'none'}. "
            "Lower train.lr or set train.max_grad_norm; train.skip_nonfinite=true skips such steps instead."
        )

    def log_training(self) -> None:
        """The mean loss since the last log line, the learning rate and the skipped steps so far."""
        self.check_finite()
        accelerator, state = self.setup.accelerator, self.state
        lr = self.scheduler.get_last_lr()[0]
        loss_value = accelerator.reduce(self.running, "mean").item() / max(self.batches_since_log, 1)
        logged = {"train/loss": loss_value, "train/lr": lr}
        self.tracker.log({**logged, **({"train/skipped": self.skipped} if self.skipped else {})}, state.global_step)
        if self.progress is not None:
            rate = self.samples / max(time.perf_counter() - self.started, 1e-9)
            self.progress.update_progress(state.global_step, loss_value, lr, rate)
        self.running.zero_()
        self.batches_since_log = 0

    def evaluate(self) -> None:
        self.check_finite()
        metrics = evaluate_with_autocast(self.setup)
        self.model.train()
        self.tracker.log(metrics, step=self.state.global_step)
        score = metrics[self.setup.primary_metric]
        if self.state.best_metric is None or score > self.state.best_metric:
            self.state.best_metric, self.state.best_step = score, self.state.global_step
            self.best = _snapshot(self.setup.params)


def evaluate_with_autocast(setup: LoopSetup) -> dict[str, float]:
    """The evaluation under the run's mixed precision: the pipelines' closures hold the uncompiled model, which
    Accelerate's autocast patch (applied to the compiled one) does not reach."""
    with setup.accelerator.autocast():
        return setup.evaluate()


def _finite_on_every_rank(loss: torch.Tensor, accelerator: Accelerator) -> bool:
    """One verdict for all ranks: if one rank skipped its backward, DDP's gradient all-reduce would wait forever."""
    return bool(accelerator.gather(torch.isfinite(loss).reshape(1)).all())


def _step(run: _Run, batch, trainable) -> torch.Tensor | None:
    """One micro-batch: forward, backward, and (at accumulation boundaries) the optimizer step."""
    accelerator, cfg = run.setup.accelerator, run.train_cfg
    with accelerator.accumulate(run.model):
        loss, _ = _forward_loss(run.model, batch, run.setup)
        if cfg.skip_nonfinite and not _finite_on_every_rank(loss, accelerator):
            run.optimizer.zero_grad()  # acts at an accumulation boundary only: that optimizer step is skipped
            return None
        accelerator.backward(loss)
        if accelerator.sync_gradients and cfg.max_grad_norm > 0:
            accelerator.clip_grad_norm_(trainable, cfg.max_grad_norm)
        run.optimizer.step()
        if accelerator.sync_gradients:  # also after an fp16 overflow skip: the schedule follows global_step
            run.scheduler.step()
        run.optimizer.zero_grad()
    return loss.detach()


@dataclass
class Trained:
    """What `train` reports: the final loop state and, when it continued a checkpoint, where it resumed."""

    state: LoopState
    resumed_from: dict | None


def _resume_report(folder: str | None, state: LoopState) -> dict | None:
    if folder is None:
        return None
    return {"checkpoint": folder, "step": state.global_step, "epoch": state.epoch, "batch": state.batches_done}


def _refuse_gradient_checkpointing(model) -> None:
    """The recompute of a checkpointed layer restores the global RNGs, not the router's generator: it would draw
    other experts than the forward did (wrong gradients, a router that advances twice per step)."""
    routed = any(isinstance(m, ExpertLinear) and m.num_experts > 1 for m in model.modules())
    if routed and getattr(model, "is_activation_checkpointing", False):
        raise UserError(
            "gradient checkpointing is on and the model has a mixture with num_experts > 1: its recompute would "
            "route to other experts than the forward did. Call model.gradient_checkpointing_disable(), or train "
            "with peft.num_experts=1."
        )


def _pin_on_cuda(loader, device: torch.device) -> None:
    """Pinned host batches, so that Accelerate's non_blocking copy overlaps the previous step (a pageable copy
    waits for the device). Accelerate's prepare copies the attribute into the loader it builds."""
    if device.type == "cuda" and isinstance(loader, torch.utils.data.DataLoader):
        loader.pin_memory = True


def _clock_due(every_s: float, saved_at: float) -> bool:
    return every_s > 0 and time.monotonic() - saved_at >= every_s


def _announce_resume(folder: str | None, state: LoopState, tracker: Tracker, accelerator: Accelerator) -> dict | None:
    """Where a resumed run continues: one `resumed/*` record, and one printed line from the main process."""
    resumed = _resume_report(folder, state)
    if resumed is not None:
        tracker.log({RESUMED_PREFIX + key: value for key, value in resumed.items()}, step=state.global_step)
        if accelerator.is_main_process:
            where = ", ".join(f"{key} {value}" for key, value in resumed.items() if key != "checkpoint")
            print(f"resumed from {folder} ({where})", flush=True)
    return resumed


def _tally(run: _Run, batch: Mapping[str, torch.Tensor], loss: torch.Tensor | None) -> None:
    """Count one micro-batch: its samples on all ranks, and its loss for the next log line and NaN check."""
    run.state.batches_done += 1
    run.samples += len(batch["labels"]) * run.setup.accelerator.num_processes
    if loss is None:
        run.skipped += 1
    else:
        run.finite_flags.append((run.state.global_step + 1, torch.isfinite(loss)))
        run.running += loss
        run.batches_since_log += 1


def _after_step(run: _Run) -> None:
    """The cadence of one optimizer step: log, evaluate, checkpoint (by steps, by the clock, on a signal) and stop
    on a signal. Every rank takes the same decisions: the signal and the clock are agreed on across ranks."""
    state, cfg, accelerator = run.state, run.train_cfg, run.setup.accelerator
    state.global_step += 1
    if state.global_step % cfg.log_every_steps == 0 or state.global_step == run.steps:
        run.log_training()
    if cfg.eval_every_steps and state.global_step % cfg.eval_every_steps == 0:
        run.evaluate()
    by_steps = cfg.checkpoint_every_steps and not (state.global_step % cfg.checkpoint_every_steps)
    due = _clock_due(cfg.checkpoint_every_minutes * 60, run.saved_at)
    stop, by_clock = agreed_stop(run.signals.received, due, accelerator)
    if by_steps or by_clock or stop is not None:
        run.save()
        run.saved_at = time.monotonic()
    if stop is not None:
        raise Interrupted(stop, state.global_step, run.last_checkpoint)


def _end_epoch(run: _Run) -> None:
    """The next epoch starts at its first batch; this one ends with an evaluation (`eval_every_epoch`) and a
    checkpoint."""
    state = run.state
    state.epoch, state.batches_done = state.epoch + 1, 0
    if run.train_cfg.eval_every_epoch:
        run.evaluate()
    run.save()
    run.saved_at = time.monotonic()


def train(
    model: torch.nn.Module,
    train_cfg: DictConfig,
    setup: LoopSetup,
    tracker: Tracker,
    progress: Console | None = None,
    signals: StopSignals | None = None,
) -> Trained:
    """Train `model` in place; with `select=best`, the best evaluated weights are loaded back at the end.

    Checkpoints (and the stop on a signal) come only at optimizer-step boundaries, never inside an accumulation
    window: a resumed run then replays exactly what an uninterrupted one would, with any `grad_accum`. `signals`
    is the caller's :class:`StopSignals` (run.py keeps it until the `interrupted` record is written); without one,
    the loop installs its own."""
    with contextlib.ExitStack() as stack:
        if signals is None:
            signals = stack.enter_context(StopSignals())
        return _train(model, train_cfg, setup, tracker, progress, signals)


def _prepare(model, trainable: list[torch.nn.Parameter], train_cfg: DictConfig, setup: LoopSetup):
    """The model (compiled with `train.compile`), its optimizer and the training loader, prepared by Accelerate."""
    optimizer = build_optimizer(
        model,
        trainable,
        train_cfg.lr,
        train_cfg.weight_decay,
        train_cfg.adam_epsilon,
        train_cfg.decay_all,
        train_cfg.get("no_decay_rule", "modules"),
    )
    if train_cfg.compile:
        model = compile_model(model)  # before DDP wraps it: DDP then syncs gradients of the compiled regions
    _pin_on_cuda(setup.train_loader, setup.accelerator.device)
    return setup.accelerator.prepare(model, optimizer, setup.train_loader)


def _train(
    model: torch.nn.Module,
    train_cfg: DictConfig,
    setup: LoopSetup,
    tracker: Tracker,
    progress: Console | None,
    signals: StopSignals,
) -> Trained:
    accelerator = setup.accelerator
    _refuse_gradient_checkpointing(model)
    trainable = [param for _, param in setup.params]
    model, optimizer, loader = _prepare(model, trainable, train_cfg, setup)
    # Steps count this process's share of the data; the scheduler is ours (not prepared), stepped once per
    # optimizer step, so that it sees the same schedule on one process or many.
    steps = total_steps(train_cfg, len(loader))
    scheduler = build_scheduler(optimizer, steps, train_cfg.warmup_ratio, train_cfg.warmup_steps)
    counters, best, last = ckpt.restore(setup, optimizer, scheduler)
    state = LoopState(**counters)
    resumed = _announce_resume(last, state, tracker, accelerator)
    if progress is not None:
        progress.start_progress(steps, completed=state.global_step)
    model.train()
    run = _Run(
        setup=setup,
        train_cfg=train_cfg,
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        state=state,
        best=best,
        tracker=tracker,
        progress=progress,
        signals=signals,
        steps=steps,
        running=torch.zeros((), device=accelerator.device),
        last_checkpoint=last,
    )
    while state.global_step < steps:
        loader.set_epoch(state.epoch)
        # A resumed epoch skips its done batches in the sampler: they are neither loaded nor collated.
        batches = accelerator.skip_first_batches(loader, state.batches_done) if state.batches_done else loader
        for batch in batches:
            _tally(run, batch, _step(run, batch, trainable))
            if accelerator.sync_gradients:
                _after_step(run)
            if state.global_step >= steps:
                break
        if state.batches_done == len(loader):
            _end_epoch(run)
    run.check_finite()
    if progress is not None:
        progress.stop_progress()
    if train_cfg.select == "best" and run.best:
        with torch.no_grad():
            for name, param in setup.params:
                param.copy_(run.best[name])
    return Trained(state, resumed)
