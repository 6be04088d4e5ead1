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
from accelerate import Accelerator, PartialState
from accelerate.state import AcceleratorState, GradientState
from accelerate.utils import DataLoaderConfiguration, set_seed
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import InterpolationResolutionError

import adamix_runner
from adamix_runner import artifacts, tasks
from adamix_runner.adaptation import adaptation_state_dict, apply, count_parameters, merge, trainable_parameters
from adamix_runner.adaptation.spec import MIXTURE_METHODS
from adamix_runner.config.checks import adaptation_spec, check_resolvable, validate
from adamix_runner.errors import UserError
from adamix_runner.pipelines import for_kind
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
from adamix_runner.tracking import build_tracker
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


def _show_params(tracker, counts) -> None:
    if tracker.console is not None:
        rows = [(name, f"{getattr(counts, name):,}") for name in ("trainable", "inference", "backbone", "head")]
        tracker.console.print_results_table(rows, title="parameters")


def _show_summary(tracker, record: dict[str, Any]) -> None:
    if tracker.console is None:
        return
    rows = [(name, f"{value:.4f}") for name, value in record["metrics"].items()]
    rows += [(f"#params {name}", f"{value:,}") for name, value in record["params"].items()]
    rows += [(f"time {name}", f"{value:.1f} s") for name, value in record["timing"].items()]
    tracker.console.print_results_table(rows, title=f"{record['status']}: {record['task']} / {record['model']}")


def _plan(cfg: DictConfig, tracker) -> dict[str, Any]:
    """Build backbone and method without data or tokenizer (and, for random init, on the meta device)."""
    pipeline = for_kind(tasks.kind(cfg.task))
    model = pipeline.load_model(cfg, tasks.num_labels(cfg.task), on_meta=not cfg.model.pretrained)
    apply(model, adaptation_spec(cfg), cfg.seed)
    counts = count_parameters(model)
    _show_params(tracker, counts)
    return _record(cfg, "planned", counts, {}, {})


def _saved_adapter(cfg: DictConfig) -> dict[str, Any] | None:
    """The metadata of the adapter that eval_only evaluates; it must be of the configured method."""
    if not cfg.eval_only:
        return None
    saved = artifacts.read_adapter_config(Path(cfg.adapter_path))
    if saved["peft"]["method"] != cfg.peft.method:
        raise UserError(
            f"adapter_path={cfg.adapter_path} holds a peft={saved['peft']['method']} adapter; "
            f"run with peft={saved['peft']['method']} (and the same task and model it was trained with)."
        )
    return saved


def build_model(cfg: DictConfig, num_labels: int, saved_folder: Path | None = None, saved: dict | None = None):
    """The task kind's backbone with the method installed -> (model, router, spec); given a saved run's folder
    (``adapter/``, or ``model/`` for full fine-tuning) and its metadata, with the saved weights loaded (the unmerged
    experts when ``peft.inference`` is not merge and the folder keeps them). The one place that rebuilds what a run
    trained, for training, eval_only, evaluation under other inference rules and export alike."""
    unmerged = saved is not None and cfg.peft.inference != "merge" and artifacts.has_experts(saved, saved_folder)
    spec = adaptation_spec(cfg, saved and saved["experts" if unmerged else "num_experts"])
    full_model_saved = saved is not None and spec.method == "full"
    model_cfg = (
        OmegaConf.merge(cfg.model, {"path": str(saved_folder), "pretrained": True}) if full_model_saved else None
    )
    set_seed(training_seed(cfg))  # a random-init backbone and the adapters' init depend on the seed alone
    model = for_kind(tasks.kind(cfg.task)).load_model(cfg, num_labels, model_cfg=model_cfg)
    try:
        router = apply(model, spec, training_seed(cfg))
    except ValueError as error:  # a method this architecture lacks (a model.path whose type the YAML does not name)
        raise UserError(f"peft={spec.method} cannot be applied to model={cfg.model.name}: {error}") from error
    if saved is not None and not full_model_saved:
        artifacts.load_adapter(model, saved_folder, experts=unmerged)
    return model, router, spec


def _check_sequence_length(cfg: DictConfig, tokenizer) -> None:
    """The tokenizer knows the model's limit where the YAML does not (a model.path); a longer sequence would crash
    at the first long example, mid-run. transformers' sentinel for "no limit" is a huge number."""
    limit = getattr(tokenizer, "model_max_length", None)
    if limit is not None and limit < 1e6 and cfg.data.max_seq_length > limit:
        raise UserError(
            f"data.max_seq_length={cfg.data.max_seq_length} is longer than model={cfg.model.name} takes "
            f"({limit} tokens); set data.max_seq_length={limit} or less."
        )


def _on_cpu(cfg: DictConfig) -> bool:
    """Accelerate sets up multi-process CPU runs (torchrun, gloo) only when told it runs on the CPU."""
    return cfg.train.cpu or not torch.cuda.is_available()


def _accelerator(cfg: DictConfig) -> Accelerator:
    """A fresh Accelerator for this run. Accelerate keeps its state process-wide and refuses a second run with
    another mixed_precision (or device), so a one-process sweep resets it first; under torchrun the process group
    stays. Batches are copied non-blocking on CUDA (from pinned memory, training/loop.py)."""
    AcceleratorState._reset_state(reset_partial_state=not torch.distributed.is_initialized())
    GradientState._reset_state()
    cpu = _on_cpu(cfg)
    return Accelerator(
        cpu=cpu,
        mixed_precision=cfg.train.mixed_precision,
        gradient_accumulation_steps=cfg.train.grad_accum,
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, non_blocking=not cpu),
    )


def _unmerged_experts(model, spec) -> dict[str, torch.Tensor] | None:
    """A mixture's experts before the merge, kept so that other inference rules can be evaluated later."""
    if spec.method not in MIXTURE_METHODS or spec.num_experts == 1:
        return None
    return {name: tensor.clone() for name, tensor in adaptation_state_dict(model).items()}


def _fit(cfg: DictConfig, folder: Path, tracker, signals: StopSignals) -> dict[str, Any]:
    started = time.perf_counter()
    pipeline = for_kind(tasks.kind(cfg.task))  # a missing optional dependency fails before the data loads
    # Under DDP rank 0 downloads and caches first; the others then read its cache instead of racing on it.
    with PartialState().main_process_first():
        task = tasks.load(cfg.task, cfg.data, fewshot_options(cfg.fewshot, cfg.seed))
        tokenizer = pipeline.load_tokenizer(cfg)
        _check_sequence_length(cfg, tokenizer)
        saved = _saved_adapter(cfg)
        model, router, spec = build_model(cfg, task.num_labels, saved and Path(cfg.adapter_path), saved)
    counts = count_parameters(model)
    _show_params(tracker, counts)
    if counts.trainable == 0 and not cfg.eval_only:
        raise UserError(
            f"peft={cfg.peft.method} trains no parameter of model={cfg.model.name} (its head has nothing besides the "
            "vocabulary projection, which stays frozen); choose another method."
        )
    accelerator = _accelerator(cfg)
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
    experts = _unmerged_experts(model, spec) if merged else None
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
            runtime.check_precision(cfg.train.mixed_precision, _on_cpu(cfg))
    except UserError as error:
        record_failure(cfg, error)
        raise
    folder = run_dir(cfg)
    previous = read_json(folder / RESULTS)
    if previous and previous["status"] == "completed" and not cfg.overwrite:
        print(f"already completed: {folder} (overwrite=true runs it again)")
        return RunResult("completed", folder, previous)
    runtime.export_distributed_env()  # a submitit job with several tasks: each is one torch.distributed rank
    main = PartialState(cpu=_on_cpu(cfg)).is_main_process  # under torchrun, files and logs come from rank 0
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
    if tracker.console is not None:
        tracker.console.print_config_tree(config)
    status = "failed"
    # The stop signals stay caught until the `interrupted` record is written and every rank got there: a signal
    # that arrives meanwhile (torchrun's SIGTERM when another rank exits) cannot kill a rank mid-write.
    with StopSignals() as signals, runtime.tf32(cfg.train.allow_tf32 and not _on_cpu(cfg)):
        try:
            record = _plan(cfg, tracker) if cfg.dry_run else _fit(cfg, folder, tracker, signals)
            record["timing"]["total_s"] = sum(record["timing"].values())
            if main:
                write_json_atomic(folder / RESULTS, record)
            status = record["status"]
            _show_summary(tracker, record)
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
