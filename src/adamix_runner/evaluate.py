"""Train once, evaluate many: a finished AdaMix run rebuilt with its unmerged experts and evaluated under other
inference rules, each evaluation written to ``evaluations/<name>.json`` (run_folder.py names them). The service
behind ``adamix-evaluate`` (cli/evaluate.py), which documents the rules and files.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from adamix_runner import artifacts, tasks
from adamix_runner.adaptation.spec import MIXTURE_METHODS
from adamix_runner.build import build_model, make_accelerator
from adamix_runner.errors import UserError
from adamix_runner.pipelines import for_kind
from adamix_runner.run_folder import (
    ADAPTER,
    EVALUATIONS,
    PREDICTIONS,
    RESULTS,
    Evaluation,
    evaluation_file,
    evaluations,
    load_config,
    read_json,
    write_json_atomic,
)

RULES = ("merge", "random", "fixed", "ensemble", "experts")


@dataclass
class FinishedRun:
    folder: Path
    cfg: DictConfig
    saved: dict
    num_experts: int


def open_run(folder: Path) -> FinishedRun:
    """The run's config and adapter metadata, checked before anything heavy: completed, AdaMix, experts kept."""
    cfg = load_config(folder)
    record = read_json(folder / RESULTS) or {}
    if record.get("status") != "completed":
        raise UserError(f"{folder}: the run is not completed (status {record.get('status', 'missing')!r}).")
    if cfg.peft.method not in MIXTURE_METHODS:
        raise UserError(
            f"{folder} is a peft={cfg.peft.method} run; inference rules apply to AdaMix runs only "
            f"(peft={' or peft='.join(MIXTURE_METHODS)})."
        )
    saved = artifacts.read_adapter_config(folder / ADAPTER)
    num_experts = saved.get("experts", saved["num_experts"])
    if num_experts < 2 or not (saved["num_experts"] > 1 or artifacts.has_experts(saved, folder / ADAPTER)):
        raise UserError(
            f"{folder}/{ADAPTER} keeps no unmerged experts (num_experts={cfg.peft.num_experts}, no "
            f"{artifacts.EXPERTS_FILE}); runs trained before the experts were kept must be retrained."
        )
    return FinishedRun(folder, cfg, saved, num_experts)


def _evaluator(run: FinishedRun):
    """The run's model with every expert loaded, and a function that evaluates it under one Evaluation."""
    cfg = OmegaConf.merge(run.cfg, {"peft": {"inference": "random"}})  # any rule but merge loads the experts
    task = tasks.load(cfg.task, cfg.data)
    pipeline = for_kind(tasks.kind(cfg.task))
    tokenizer = pipeline.load_tokenizer(cfg)
    model, router, _ = build_model(cfg, task.num_labels, run.folder / ADAPTER, run.saved, pipeline=pipeline)
    accelerator = make_accelerator(cfg)
    model.to(accelerator.device)
    scratch = run.folder / EVALUATIONS / ".current"
    prepared = pipeline.prepare(cfg, task, tokenizer, model, accelerator, scratch)

    def evaluate(evaluation: Evaluation) -> dict[str, float]:
        router.inference = evaluation.rule
        router.fixed_expert = evaluation.expert or 0
        if evaluation.eval_seed is not None:
            router.eval_seed = cfg.seed + 1 + evaluation.eval_seed  # prepared.evaluate restarts the stream there
        metrics = prepared.evaluate()
        if (scratch / PREDICTIONS).exists():  # generation: keep each evaluation's predictions apart
            kept = run.folder / EVALUATIONS / evaluation.name
            shutil.rmtree(kept, ignore_errors=True)
            kept.parent.mkdir(parents=True, exist_ok=True)
            os.replace(scratch, kept)
        return metrics

    return evaluate


def evaluate_run(
    folder: Path, rules: list[str], random_seeds: int = 1, fixed_expert: int = 0, overwrite: bool = False
) -> list[Path]:
    """Write the run's missing evaluations; returns the files written (none when all were present)."""
    run = open_run(folder)
    if not 0 <= fixed_expert < run.num_experts:
        raise UserError(f"--fixed-expert {fixed_expert} is not an expert of {folder} (0..{run.num_experts - 1}).")
    todo = [
        evaluation
        for evaluation in evaluations(rules, run.num_experts, random_seeds, fixed_expert)
        if overwrite or not evaluation_file(folder, evaluation.name).exists()
    ]
    if not todo:
        return []
    evaluate = _evaluator(run)
    written = []
    for evaluation in todo:
        record = {
            "rule": evaluation.rule,
            "eval_seed": evaluation.eval_seed,
            "expert": evaluation.expert,
            "metrics": evaluate(evaluation),
            "primary_metric": run.cfg.task.primary_metric,
        }
        path = evaluation_file(folder, evaluation.name)
        write_json_atomic(path, record)
        written.append(path)
    return written
