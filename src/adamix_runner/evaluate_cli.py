"""`adamix-evaluate RUN_DIR [RUN_DIR ...] --rules merge,random,fixed,ensemble,experts --random-eval-seeds N`.

Train once, evaluate many: a finished AdaMix run (adapter or LoRA mixture, NLU or NLG) is rebuilt from its folder
with its unmerged experts (``adapter/experts.safetensors``, or an adapter saved unmerged) and evaluated under other
inference rules, without retraining. Each evaluation lands in the run folder as one JSON file
(``{"rule", "eval_seed", "expert", "metrics", "primary_metric"}``), which ``adamix-report`` reads:

=============  ==================================  ===============================================================
rule           file                                what it evaluates
=============  ==================================  ===============================================================
merge          evaluations/merge.json              the mean of the experts (what the run reported)
random         evaluations/random-seed<k>.json     one random expert per sequence; k = 0..N-1, the eval generator
                                                   seeded with seed + 1 + k (k = 0 is what a run trained with
                                                   peft.inference=random reports: each evaluation restarts it)
fixed          evaluations/fixed-expert<i>.json    every input to expert i (--fixed-expert, default 0: the paper's
                                                   "first adaptation module")
ensemble       evaluations/ensemble.json           the mean of the experts' outputs
experts        evaluations/fixed-expert<i>.json    each single expert, i = 0..M-1
=============  ==================================  ===============================================================

Evaluations already present are skipped (``--overwrite`` redoes them). Generation runs write their predictions
under ``evaluations/<name>/predictions/``, leaving the run's own predictions alone.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from adamix_runner import artifacts, tasks
from adamix_runner.adaptation.spec import MIXTURE_METHODS
from adamix_runner.errors import UserError

RULES = ("merge", "random", "fixed", "ensemble", "experts")
EVALUATIONS = "evaluations"


@dataclass(frozen=True)
class Evaluation:
    """One evaluation of a run: the router's rule, the random-routing seed or the expert, and its file's name."""

    rule: str
    eval_seed: int | None = None
    expert: int | None = None

    @property
    def name(self) -> str:
        if self.rule == "random":
            return f"random-seed{self.eval_seed}"
        if self.rule == "fixed":
            return f"fixed-expert{self.expert}"
        return self.rule


def planned(rules: list[str], num_experts: int, random_seeds: int, fixed_expert: int) -> list[Evaluation]:
    """The evaluations that ``rules`` ask for, without duplicates, in the order given."""
    chosen: list[Evaluation] = []
    for rule in rules:
        if rule == "random":
            chosen += [Evaluation("random", eval_seed=k) for k in range(random_seeds)]
        elif rule == "fixed":
            chosen.append(Evaluation("fixed", expert=fixed_expert))
        elif rule == "experts":
            chosen += [Evaluation("fixed", expert=i) for i in range(num_experts)]
        else:
            chosen.append(Evaluation(rule))
    return list(dict.fromkeys(chosen))


def parse_rules(text: str) -> list[str]:
    rules = [rule.strip() for rule in text.split(",") if rule.strip()]
    unknown = [rule for rule in rules if rule not in RULES]
    if unknown or not rules:
        raise UserError(f"--rules {text!r}: each rule must be one of {', '.join(RULES)}.")
    return rules


@dataclass
class FinishedRun:
    folder: Path
    cfg: DictConfig
    saved: dict
    num_experts: int


def open_run(folder: Path) -> FinishedRun:
    """The run's config and adapter metadata, checked before anything heavy: completed, AdaMix, experts kept."""
    config_file = folder / ".hydra" / "config.yaml"
    if not config_file.exists():
        raise UserError(f"{folder} is not a run folder (no .hydra/config.yaml); pass outputs/runs/.../seed<k>.")
    record = artifacts.read_json(folder / "results.json") or {}
    if record.get("status") != "completed":
        raise UserError(f"{folder}: the run is not completed (status {record.get('status', 'missing')!r}).")
    cfg = OmegaConf.load(config_file)
    if cfg.peft.method not in MIXTURE_METHODS:
        raise UserError(
            f"{folder} is a peft={cfg.peft.method} run; inference rules apply to AdaMix runs only "
            f"(peft={' or peft='.join(MIXTURE_METHODS)})."
        )
    saved = artifacts.read_adapter_config(folder / "adapter")
    num_experts = saved.get("experts", saved["num_experts"])
    if num_experts < 2 or not (saved["num_experts"] > 1 or artifacts.has_experts(saved, folder / "adapter")):
        raise UserError(
            f"{folder}/adapter keeps no unmerged experts (num_experts={cfg.peft.num_experts}, no "
            f"{artifacts.EXPERTS_FILE}); runs trained before the experts were kept must be retrained."
        )
    return FinishedRun(folder, cfg, saved, num_experts)


def _evaluator(run: FinishedRun):
    """The run's model with every expert loaded, and a function that evaluates it under one Evaluation."""
    from adamix_runner.pipelines import for_kind
    from adamix_runner.run import _accelerator, build_model

    cfg = OmegaConf.merge(run.cfg, {"peft": {"inference": "random"}})  # any rule but merge loads the experts
    task = tasks.load(cfg.task, cfg.data)
    pipeline = for_kind(tasks.kind(cfg.task))
    tokenizer = pipeline.load_tokenizer(cfg)
    model, router, _ = build_model(cfg, task.num_labels, run.folder / "adapter", run.saved)
    accelerator = _accelerator(cfg)
    model.to(accelerator.device)
    scratch = run.folder / EVALUATIONS / ".current"
    prepared = pipeline.prepare(cfg, task, tokenizer, model, accelerator, scratch)

    def evaluate(evaluation: Evaluation) -> dict[str, float]:
        router.inference = evaluation.rule
        router.fixed_expert = evaluation.expert or 0
        if evaluation.eval_seed is not None:
            router.eval_seed = cfg.seed + 1 + evaluation.eval_seed  # prepared.evaluate restarts the stream there
        metrics = prepared.evaluate()
        if (scratch / "predictions").exists():  # generation: keep each evaluation's predictions apart
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
        for evaluation in planned(rules, run.num_experts, random_seeds, fixed_expert)
        if overwrite or not (folder / EVALUATIONS / f"{evaluation.name}.json").exists()
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
        path = folder / EVALUATIONS / f"{evaluation.name}.json"
        artifacts.write_json_atomic(path, record)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="adamix-evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dirs", nargs="+", type=Path, help="completed AdaMix run folders (.../seed<k>)")
    parser.add_argument("--rules", default="merge,random,fixed,ensemble", help=f"comma-separated, of {RULES}")
    parser.add_argument("--random-eval-seeds", type=int, default=1, help="random-routing evaluations per run")
    parser.add_argument("--fixed-expert", type=int, default=0, help="the expert of rule `fixed`")
    parser.add_argument("--overwrite", action="store_true", help="redo evaluations already present")
    args = parser.parse_args(argv)
    try:
        rules = parse_rules(args.rules)
        if args.random_eval_seeds < 1:
            raise UserError(f"--random-eval-seeds must be >= 1, got {args.random_eval_seeds}.")
        for folder in args.run_dirs:
            open_run(folder)  # every folder is checked before the first model is built
        for folder in args.run_dirs:
            written = evaluate_run(folder, rules, args.random_eval_seeds, args.fixed_expert, args.overwrite)
            print(f"{folder}: {len(written)} evaluation(s) written" + ("" if written else " (all present)"))
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
