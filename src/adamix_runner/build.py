"""The rebuild service: a run's model built from its config (and its saved files), and the Accelerator it runs on.

One place for what a run trained, so that training and eval_only (run.py), other inference rules (evaluate.py)
and export (cli/export.py) build the same model from the same seed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState, GradientState
from accelerate.utils import DataLoaderConfiguration, set_seed
from omegaconf import DictConfig, OmegaConf

from adamix_runner import artifacts, tasks
from adamix_runner.adaptation import adaptation_state_dict, apply
from adamix_runner.adaptation.spec import MIXTURE_METHODS
from adamix_runner.config.checks import adaptation_spec
from adamix_runner.errors import UserError
from adamix_runner.pipelines import Pipeline, for_kind
from adamix_runner.run_folder import ADAPTER, MODEL, load_config
from adamix_runner.tasks.fewshot import training_seed


def on_cpu(cfg: DictConfig) -> bool:
    """Accelerate sets up multi-process CPU runs (torchrun, gloo) only when told it runs on the CPU."""
    return cfg.train.cpu or not torch.cuda.is_available()


def make_accelerator(cfg: DictConfig) -> Accelerator:
    """A fresh Accelerator for this run. Accelerate keeps its state process-wide and refuses a second run with
    another mixed_precision (or device), so a one-process sweep resets it first; under torchrun the process group
    stays. Batches are copied non-blocking on CUDA (from pinned memory, training/loop.py)."""
    AcceleratorState._reset_state(reset_partial_state=not torch.distributed.is_initialized())
    GradientState._reset_state()
    cpu = on_cpu(cfg)
    return Accelerator(
        cpu=cpu,
        mixed_precision=cfg.train.mixed_precision,
        gradient_accumulation_steps=cfg.train.grad_accum,
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, non_blocking=not cpu),
    )


def saved_adapter(cfg: DictConfig) -> dict[str, Any] | None:
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


def build_model(
    cfg: DictConfig,
    num_labels: int,
    saved_folder: Path | None = None,
    saved: dict | None = None,
    *,
    pipeline: Pipeline | None = None,
):
    """The task kind's backbone with the method installed -> (model, router, spec); given a saved run's folder
    (``adapter/``, or ``model/`` for full fine-tuning) and its metadata, with the saved weights loaded (the unmerged
    experts when ``peft.inference`` is not merge and the folder keeps them). The one place that rebuilds what a run
    trained, for training, eval_only, evaluation under other inference rules and export alike. ``pipeline``: the
    task kind's, where the caller has chosen it already."""
    unmerged = saved is not None and cfg.peft.inference != "merge" and artifacts.has_experts(saved, saved_folder)
    spec = adaptation_spec(cfg, saved and saved["experts" if unmerged else "num_experts"])
    full_model_saved = saved is not None and spec.method == "full"
    model_cfg = (
        OmegaConf.merge(cfg.model, {"path": str(saved_folder), "pretrained": True}) if full_model_saved else None
    )
    set_seed(training_seed(cfg))  # a random-init backbone and the adapters' init depend on the seed alone
    pipeline = pipeline or for_kind(tasks.kind(cfg.task))
    model = pipeline.load_model(cfg, num_labels, model_cfg=model_cfg)
    try:
        router = apply(model, spec, training_seed(cfg))
    except ValueError as error:  # a method this architecture lacks (a model.path whose type the YAML does not name)
        raise UserError(f"peft={spec.method} cannot be applied to model={cfg.model.name}: {error}") from error
    if saved is not None and not full_model_saved:
        artifacts.load_adapter(model, saved_folder, experts=unmerged)
    return model, router, spec


def unmerged_experts(model, spec) -> dict[str, torch.Tensor] | None:
    """A mixture's experts before the merge, kept so that other inference rules can be evaluated later."""
    if spec.method not in MIXTURE_METHODS or spec.num_experts == 1:
        return None
    return {name: tensor.clone() for name, tensor in adaptation_state_dict(model).items()}


def rebuild_run(run_dir: Path):
    """A finished run's config and model with its saved adapter loaded: the merged model the run evaluated last."""
    cfg = load_config(run_dir)
    folder = run_dir / (MODEL if cfg.peft.method == "full" else ADAPTER)
    saved = artifacts.read_adapter_config(folder)
    model, _, _ = build_model(cfg, saved["task"]["num_labels"], folder, saved)
    return cfg, model.eval()
