"""PLAN=1: a table's runs, which are already completed, and the accelerator hours the rest needs; trains nothing.

Each cell's config is composed exactly as its `adamix-run` job will be (and validated, so a bad declaration fails
here, before any launch); its run folder says whether it is done. The estimate counts training tokens:
samples x epochs (or max_steps x batch) x views (2 with AdaMix's consistency pass) x tokens per sample (the
table's declared `token_length` for the task, else data.max_seq_length, an upper bound under dynamic padding),
divided by a stated throughput (throughput.py). Inference tables add their evaluations: evaluation samples x
tokens x the number of inference rules, at a third of the training cost per token (a forward pass only).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig

from adamix_runner.tables import declaration, sizes
from adamix_runner.tables.declaration import Cell
from adamix_runner.tables.throughput import Throughput, throughput


@dataclass
class CellPlan:
    cell: Cell
    folder: Path  # the run folder without seed<k>
    status: dict[int, str]  # seed -> completed | failed | interrupted | planned | absent
    samples: int | None  # training samples seen per run (None: unknown task size)
    views: int
    tokens_per_sample: int
    evaluations: int = 0  # inference tables: evaluation passes still to do, all seeds together
    eval_samples: int = 0

    def left(self) -> list[int]:
        return [seed for seed, status in self.status.items() if status != "completed"]

    def train_tokens(self) -> float | None:
        return None if self.samples is None else float(self.samples) * self.views * self.tokens_per_sample

    def hours(self, rate: Throughput) -> float | None:
        tokens = self.train_tokens()
        if tokens is None:
            return None
        evaluation = self.evaluations * self.eval_samples * self.tokens_per_sample / 3
        return (len(self.left()) * tokens + evaluation) / rate.tokens_per_s / 3600


@dataclass
class TablePlan:
    decl: DictConfig
    profile: str
    seeds: list[int]
    device: str
    rate: Throughput
    root: str  # the output_root of the runs
    cells: list[CellPlan] = field(default_factory=list)

    def refresh(self) -> TablePlan:
        """Read the run statuses again (after a launch)."""
        for c in self.cells:
            c.status = {seed: _status(c.folder / f"seed{seed}") for seed in self.seeds}
        return self

    def runs(self) -> int:
        return len(self.cells) * len(self.seeds)

    def completed(self) -> int:
        return sum(len(self.seeds) - len(c.left()) for c in self.cells)

    def hours(self) -> float:
        return sum(c.hours(self.rate) or 0.0 for c in self.cells)


def training_samples(cfg: DictConfig) -> int | None:
    """Samples one run trains on: max_steps x global batch, else the (capped) train split x epochs."""
    batch = cfg.train.batch_size * cfg.train.grad_accum
    if cfg.train.max_steps > 0:
        return cfg.train.max_steps * batch
    size = sizes.TRAIN.get(cfg.task.name)
    if size is None:
        return None
    if cfg.data.max_train_samples:
        size = min(size, cfg.data.max_train_samples)
    return size * cfg.train.epochs


def views(cfg: DictConfig) -> int:
    """2 when the run trains with the consistency pass, as the pipelines decide: a positive (or null: the official)
    peft.consistency_weight, except one-logit regression (STS-B), whose KL is zero."""
    weight = cfg.peft.get("consistency_weight")
    return 2 if (weight is None or weight > 0) and cfg.task.get("num_labels") != 1 else 1


def _status(folder: Path) -> str:
    path = folder / "results.json"
    return json.loads(path.read_text()).get("status", "absent") if path.is_file() else "absent"


def evaluation_files(decl: DictConfig, num_experts: int) -> list[str]:
    """The evaluations/<name>.json an inference table reads from each run (the declaration contract's names)."""
    names = []
    for rule in decl.rules:
        if rule == "random":
            names += [f"random-seed{k}" for k in range(int(decl.get("random_eval_seeds", 1)))]
        elif rule == "experts":
            names += [f"fixed-expert{i}" for i in range(num_experts)]
        elif rule == "fixed":
            names.append("fixed-expert0")  # adamix-evaluate's default --fixed-expert, the paper's first module
        else:
            names.append(str(rule))
    return names


def _cell_plan(decl: DictConfig, cell: Cell, seed_list: list[int], extra: list[str]) -> tuple[CellPlan, DictConfig]:
    from adamix_runner.cli import compose_config
    from adamix_runner.config import check_resolvable, run_dir, validate

    cfg = compose_config(*cell.overrides, f"seed={seed_list[0]}", *extra)
    check_resolvable(cfg)
    validate(cfg)
    folder = run_dir(cfg).parent
    lengths = decl.get("token_length") or {}
    length = int(lengths[cell.task].value) if cell.task in lengths else int(cfg.data.max_seq_length)
    status = {seed: _status(folder / f"seed{seed}") for seed in seed_list}
    names = evaluation_files(decl, cfg.peft.num_experts) if decl.kind == "inference" else []
    evaluations = sum(
        not (folder / f"seed{k}" / "evaluations" / f"{n}.json").is_file() for k in seed_list for n in names
    )
    eval_samples = sizes.EVAL.get(cfg.task.name, 0)
    if cfg.data.max_eval_samples:
        eval_samples = min(eval_samples, cfg.data.max_eval_samples) if eval_samples else cfg.data.max_eval_samples
    plan = CellPlan(cell, folder, status, training_samples(cfg), views(cfg), length, evaluations, eval_samples)
    return plan, cfg


def make_plan(table_id: str, profile: str, seed_count: int | None, extra: list[str], bench_dir: Path) -> TablePlan:
    """Compose and check every cell of `table_id` under `profile`; the run statuses and the hours left."""
    decl = declaration.load(table_id)
    seed_list = declaration.seeds(decl, seed_count)
    device = str(declaration.profile_of(decl, profile).get("device", "gpu" if profile == "paper" else "cpu"))
    cell_plans, rate = [], None
    root = declaration.output_root(declaration.grid_source(decl), profile)
    for cell in declaration.cells(decl, profile):
        plan, cfg = _cell_plan(decl, cell, seed_list, extra)
        cell_plans.append(plan)
        rate = rate or throughput(cfg.model, device, bench_dir)
        root = str(cfg.output_root)  # the composed one: a user's output_root= override wins, as for the runs
    return TablePlan(decl, profile, seed_list, device, rate or Throughput(1.0, "no cells"), root, cell_plans)
