"""run(cfg): validate, load, adapt, train, merge, evaluate, save, log — the whole story top to bottom."""

from __future__ import annotations

import contextlib
import platform
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import accelerate
import datasets
import torch
import transformers
from accelerate import PartialState
from accelerate.utils import set_seed
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import InterpolationResolutionError

import adamix_runner
from adamix_runner import artifacts, tasks
from adamix_runner.adaptation import apply, count_parameters, merge, trainable_parameters
from adamix_runner.build import build_model, make_accelerator, on_cpu, saved_adapter, unmerged_experts
from adamix_runner.config.checks import adaptation_spec, check_resolvable, validate
from adamix_runner.errors import UserError
from adamix_runner.pipelines import Pipeline, for_kind
from adamix_runner.run_folder import (
    ADAPTER,
    CHECKPOINT,
    CONFIG,
    METRICS,
    MODEL,
    RESULTS,
    config_hash,
    read_json,
    run_dir,
    write_json_atomic,
)
from adamix_runner.tasks.fewshot import options as fewshot_options
from adamix_runner.tasks.fewshot import training_seed
from adamix_runner.tracking import CompositeTracker, build_tracker
from adamix_runner.training import runtime
from adamix_runner.training.loop import LoopSetup, evaluate_with_autocast, train
from adamix_runner.training.signals import Interrupted, StopSignals


@dataclass
class RunResult:
    status: str
    run_dir: Path
    record: dict[str, Any]


def _versions() -> dict[str, str]:
    modules = (adamix_runner, torch, transformers, accelerate, datasets)
    return {"python": platform.python_version(), **{m.__name__: m.__version__ for m in modules}}


def _record(cfg: DictConfig, status: str, counts, metrics: dict, timing: dict) -> dict[str, Any]:
    """The results.json record; `counts` are taken before merging (what trained, what infers)."""
    return {
        "status": status,
        "task": cfg.task.name,
        "model": cfg.model.name,
        "peft": cfg.peft.method,
        "seed": cfg.seed,
        "metrics": metrics,
        "primary_metric": cfg.task.primary_metric,
        "params": {"trainable": counts.trainable, "inference": counts.inference, "backbone": counts.backbone},
        "timing": timing,
        "versions": _versions(),
        "config": OmegaConf.to_container(cfg, resolve=True),
        "config_hash": config_hash(cfg),
    }


def _plan(cfg: DictConfig, pipeline: Pipeline, tracker: CompositeTracker) -> dict[str, Any]:
    """Build backbone and method without data or tokenizer (and, for random init, on the meta device)."""
    model = pipeline.load_model(cfg, tasks.num_labels(cfg.task), on_meta=not cfg.model.pretrained)
    apply(model, adaptation_spec(cfg), cfg.seed)
    counts = count_parameters(model)
    tracker.show_parameters(counts)
    return _record(cfg, "planned", counts, {}, {})


def _check_sequence_length(cfg: DictConfig, tokenizer) -> None:
    """The tokenizer knows the model's limit where the YAML does not (a model.path); a longer sequence would crash
    at the first long example, mid-run. transformers' sentinel for "no limit" is a huge number."""
    limit = getattr(tokenizer, "model_max_length", None)
    if limit is not None and limit < 1e6 and cfg.data.max_seq_length > limit:
        raise UserError(
            f"data.max_seq_length={cfg.data.max_seq_length} is longer than model={cfg.model.name} takes "
            f"({limit} tokens); set data.max_seq_length={limit} or less."
        )


def _fit(
    cfg: DictConfig, pipeline: Pipeline, folder: Path, tracker: CompositeTracker, signals: StopSignals
) -> dict[str, Any]:
    started = time.perf_counter()
    # Under DDP rank 0 downloads and caches first; the others then read its cache instead of racing on it.
    with PartialState().main_process_first():
        task = tasks.load(cfg.task, cfg.data, fewshot_options(cfg.fewshot, cfg.seed))
        tokenizer = pipeline.load_tokenizer(cfg)
        _check_sequence_length(cfg, tokenizer)
        saved = saved_adapter(cfg)
        model, router, spec = build_model(
            cfg, task.num_labels, saved and Path(cfg.adapter_path), saved, pipeline=pipeline
        )
    counts = count_parameters(model)
    tracker.show_parameters(counts)
    if counts.trainable == 0 and not cfg.eval_only:
        raise UserError(
            f"peft={cfg.peft.method} trains no parameter of model={cfg.model.name} (its head has nothing besides the "
            "vocabulary projection, which stays frozen); choose another method."
        )
    accelerator = make_accelerator(cfg)
    model.to(accelerator.device)
    with accelerator.main_process_first():
        prepared = pipeline.prepare(cfg, task, tokenizer, model, accelerator, folder)
    set_seed(training_seed(cfg))  # tokenizing afresh draws random numbers that a cached run does not: start equal
    setup = LoopSetup(
        accelerator=accelerator,
        train_loader=prepared.train_loader,
        evaluate=prepared.evaluate,
        params=trainable_parameters(model),
        router=router,
        loss=prepared.loss,
        num_views=prepared.num_views,
        primary_metric=cfg.task.primary_metric,
        checkpoint_dir=folder / CHECKPOINT,
    )
    resumed_from = None
    if not cfg.eval_only:
        resumed_from = train(model, cfg.train, setup, tracker, progress=tracker.console, signals=signals).resumed_from
    trained = time.perf_counter()
    merged = spec.inference == "merge"
    experts = unmerged_experts(model, spec) if merged else None
    if merged:
        merge(model)
    metrics = evaluate_with_autocast(setup)
    tracker.log({f"final/{key}": value for key, value in metrics.items()}, step=-1)
    timing = {"train_s": trained - started, "eval_s": time.perf_counter() - trained}
    meta = {
        "peft": OmegaConf.to_container(cfg.peft, resolve=True),
        "merged": merged,
        "num_experts": 1 if merged else spec.num_experts,
        "model": OmegaConf.to_container(cfg.model, resolve=True),
        "task": {"name": task.name, "num_labels": task.num_labels, "label_names": task.label_names},
        **({"experts": spec.num_experts} if experts is not None else {}),
    }
    if accelerator.is_main_process:
        if spec.method == "full":
            artifacts.save_full_model(model, folder / MODEL, meta)
        else:
            artifacts.save_adapter(model, folder / ADAPTER, meta, experts)
        if not cfg.train.keep_checkpoint:
            shutil.rmtree(folder / CHECKPOINT, ignore_errors=True)
    record = {**_record(cfg, "completed", counts, metrics, timing), "resumed_from": resumed_from}
    record["runtime"] = runtime.describe(accelerator)
    if task.notes:  # facts about the data the numbers rest on (a substitute evaluation set)
        record["notes"] = dict(task.notes)
    return record


def _wandb_options(cfg: DictConfig, folder: Path) -> dict[str, Any]:
    log = cfg.logger
    name = "/".join(folder.parts[-5:])
    return {
        "project": log.wandb_project,
        "entity": log.wandb_entity,
        "group": log.wandb_group,
        "tags": list(log.wandb_tags),
        "name": name,
    }


def _start_afresh(folder: Path) -> None:
    """overwrite=true: no checkpoint to continue (a kept final one would skip training) and a new metrics.jsonl.
    results.json and the saved adapter stay until this run replaces them, so a failure loses no completed result."""
    shutil.rmtree(folder / CHECKPOINT, ignore_errors=True)
    (folder / METRICS).unlink(missing_ok=True)


def record_failure(cfg: DictConfig, error: BaseException) -> None:
    """Mark a point that failed (a sweep's bad value, a crash) without touching a completed result; a config that
    does not resolve names no folder, and only the sweep's report records it."""
    try:
        folder = run_dir(cfg)
    except InterpolationResolutionError:
        return
    previous = read_json(folder / RESULTS)
    if previous is None or previous.get("status") != "completed":
        failure = {"status": "failed", "error": f"{type(error).__name__}: {error}", "config_hash": config_hash(cfg)}
        with contextlib.suppress(OSError):  # an unwritable folder: the error itself is what the user sees
            write_json_atomic(folder / RESULTS, failure)


def run(cfg: DictConfig) -> RunResult:
    """One run: the run folder is derived from the config, so the same command resumes or reports the result.

    Every failure after validation starts is recorded in the run folder's results.json (status failed)."""
    try:
        check_resolvable(cfg)
        validate(cfg)
        if not cfg.dry_run:
            runtime.check_precision(cfg.train.mixed_precision, on_cpu(cfg))
    except UserError as error:
        record_failure(cfg, error)
        raise
    folder = run_dir(cfg)
    previous = read_json(folder / RESULTS)
    if previous and previous["status"] == "completed" and not cfg.overwrite:
        print(f"already completed: {folder} (overwrite=true runs it again)")
        return RunResult("completed", folder, previous)
    runtime.export_distributed_env()  # a submitit job with several tasks: each is one torch.distributed rank
    main = PartialState(cpu=on_cpu(cfg)).is_main_process  # under torchrun, files and logs come from rank 0
    if main and cfg.overwrite:
        _start_afresh(folder)
    if main:
        try:
            (folder / CONFIG).parent.mkdir(parents=True, exist_ok=True)
            OmegaConf.save(cfg, folder / CONFIG)
        except OSError as error:
            raise UserError(
                f"the run folder {folder} cannot be written ({error}); pass output_root=<a writable folder>."
            ) from error
    config = OmegaConf.to_container(cfg, resolve=True)
    kinds = [*cfg.logger.kinds, "jsonl"] if main else []
    tracker = build_tracker(kinds, folder, config, wandb_options=_wandb_options(cfg, folder))
    tracker.show_config(config)
    status = "failed"
    # The stop signals stay caught until the `interrupted` record is written and every rank got there: a signal
    # that arrives meanwhile (torchrun's SIGTERM when another rank exits) cannot kill a rank mid-write.
    with StopSignals() as signals, runtime.tf32(cfg.train.allow_tf32 and not on_cpu(cfg)):
        try:
            pipeline = for_kind(tasks.kind(cfg.task))  # a missing optional dependency fails before the data loads
            record = _plan(cfg, pipeline, tracker) if cfg.dry_run else _fit(cfg, pipeline, folder, tracker, signals)
            record["timing"]["total_s"] = sum(record["timing"].values())
            if main:
                write_json_atomic(folder / RESULTS, record)
            status = record["status"]
            tracker.show_summary(record)
            return RunResult(status, folder, record)
        except Interrupted as stop:
            status = "interrupted"
            interrupted = {"status": status, "step": stop.step, "checkpoint": stop.checkpoint, "error": str(stop)}
            if main:
                record = {**interrupted, "config_hash": config_hash(cfg)}
                write_json_atomic(folder / RESULTS, record)
            PartialState().wait_for_everyone()
            stop.handover = signals.previous_handler(stop.signum)
            raise
        except BaseException as error:
            if main:
                record_failure(cfg, error)
            raise
        finally:
            tracker.close(status)
