"""PLAN=1: a table's runs, which are already completed, and the accelerator hours the rest needs; trains nothing.

Each cell's config is composed exactly as its `adamix-run` job will be (with the launcher, and validated, so a bad
declaration or launcher key fails here, before any launch); its run folder says whether it is done. A run's cost
is what it computes (cost.py): training FLOPs (samples x views x tokens per padded row x FLOPs per token of the
cell's model and method), its evaluations (a forward pass per evaluation row, at every epoch end when
train.eval_every_epoch, every train.eval_every_steps, and once at the end) and, for generation, the beam search of
the final evaluation; tokens per row come from lengths.py (measured, stated, or the cap). Divided by the rate of
the run's precision (throughput.py). Inference tables add their evaluations under the table's rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hydra.errors import HydraException
from omegaconf import DictConfig

from adamix_runner import run_folder
from adamix_runner.errors import UserError
from adamix_runner.tables import declaration, sizes
from adamix_runner.tables.cost import Weights, prefix_tokens, weights
from adamix_runner.tables.declaration import Cell
from adamix_runner.tables.lengths import RowTokens, row_tokens
from adamix_runner.tables.throughput import Rate, rate
from adamix_runner.tasks import GENERATION_FAMILIES


@dataclass
class CellPlan:
    cell: Cell
    folder: Path  # the run folder without seed<k>
    status: dict[int, str]  # seed -> completed | failed | interrupted | planned | absent
    samples: int | None  # training samples seen per run (None: unknown task size)
    views: int
    tokens: RowTokens
    weights: Weights
    rate: Rate
    prefix: int = 0  # prefix tokens every row attends to
    eval_passes: int = 1  # evaluations of one run (epoch ends, every N steps, the final one)
    eval_samples: int = 0
    beam: tuple[int, int, int] = (0, 0, 0)  # generation: (inputs, beams, new tokens) of one decode pass
    evaluations: int = 0  # inference tables: evaluation passes still to do, all seeds together

    def left(self) -> list[int]:
        return [seed for seed, status in self.status.items() if status != "completed"]

    def train_flops(self) -> float | None:
        """One run's training FLOPs."""
        if self.samples is None:
            return None
        keys = self.tokens.train + self.prefix
        return float(self.samples) * self.views * self.tokens.train * self.weights.train_per_token(keys)

    def eval_flops(self) -> float:
        """One evaluation pass: teacher-forced rows, plus the beam search of a generation task."""
        keys = self.tokens.eval + self.prefix
        forward = self.eval_samples * self.tokens.eval * self.weights.forward_per_token(keys)
        inputs, beams, new = self.beam
        decode = inputs * beams * new * self.weights.forward_per_token(self.tokens.eval + new / 2)
        return forward + decode

    def run_flops(self) -> float | None:
        train = self.train_flops()
        return None if train is None else train + self.eval_passes * self.eval_flops()

    def hours(self) -> float | None:
        run = self.run_flops()
        if run is None:
            return None
        return (len(self.left()) * run + self.evaluations * self.eval_flops()) / self.rate.flops_per_s / 3600


@dataclass
class TablePlan:
    decl: DictConfig
    profile: str
    seeds: list[int]
    device: str
    root: str  # the output_root of the runs
    cells: list[CellPlan] = field(default_factory=list)

    def refresh(self) -> TablePlan:
        """Read the run statuses again (after a launch)."""
        for c in self.cells:
            c.status = {seed: run_folder.status(run_folder.seed_dir(c.folder, seed)) for seed in self.seeds}
        return self

    def runs(self) -> int:
        return len(self.cells) * len(self.seeds)

    def completed(self) -> int:
        return sum(len(self.seeds) - len(c.left()) for c in self.cells)

    def hours(self) -> float:
        return sum(c.hours() or 0.0 for c in self.cells)

    def rates(self) -> list[str]:
        return sorted({c.rate.source for c in self.cells})

    def longest_first(self) -> list[int]:
        """The cells' indices (declaration order), the longest run first: the order the sweeper submits them in,
        so that the longest jobs of an array do not start in its last wave."""

        def seconds(index: int) -> float:
            cell = self.cells[index]
            return (cell.run_flops() or 0.0) / cell.rate.flops_per_s

        return sorted(range(len(self.cells)), key=lambda index: -seconds(index))


def training_samples(cfg: DictConfig) -> int | None:
    """Samples one run trains on: max_steps x global batch, else the (capped) train split (a few-shot task's K)
    x epochs."""
    batch = cfg.train.batch_size * cfg.train.grad_accum
    if cfg.train.max_steps > 0:
        return cfg.train.max_steps * batch
    size = sizes.TRAIN.get(cfg.task.name)
    if cfg.task.prompt.template is not None and cfg.fewshot.k:
        size = int(cfg.fewshot.k)  # a few-shot split: K rows in all (tasks/fewshot.py)
    if size is None:
        return None
    if cfg.data.max_train_samples:
        size = min(size, cfg.data.max_train_samples)
    return size * cfg.train.epochs


def eval_passes(cfg: DictConfig, samples: int | None) -> int:
    """Evaluations of one run: each epoch end (train.eval_every_epoch), every train.eval_every_steps, the final."""
    train = cfg.train
    steps = 0 if samples is None else samples // (train.batch_size * train.grad_accum)
    epochs = train.epochs if train.max_steps == 0 else 0
    every = steps // train.eval_every_steps if train.eval_every_steps else 0
    return (epochs if train.eval_every_epoch else 0) + every + 1


def views(cfg: DictConfig) -> int:
    """2 when the run trains with the consistency pass, as the pipelines decide: a positive (or null: the official)
    peft.consistency_weight, except one-logit regression (STS-B), whose KL is zero."""
    weight = cfg.peft.get("consistency_weight")
    return 2 if (weight is None or weight > 0) and cfg.task.get("num_labels") != 1 else 1


def evaluation_files(decl: DictConfig, num_experts: int) -> list[str]:
    """The evaluations/<name>.json an inference table reads from each run (`fixed`: adamix-evaluate's default
    --fixed-expert 0, the paper's first module)."""
    return run_folder.evaluation_names(list(decl.rules), num_experts, int(decl.get("random_eval_seeds", 1)))


def _compose(overrides: list[str]) -> DictConfig:
    from adamix_runner.config.checks import check_resolvable, validate
    from adamix_runner.config.compose import compose_config

    try:
        cfg = compose_config(*overrides)
    except HydraException as error:
        hint = ""
        if any(o.startswith("hydra.launcher.") for o in overrides) and not any(
            o.startswith("hydra/launcher=") for o in overrides
        ):
            hint = " (hydra.launcher.* keys need a launcher: LAUNCHER=slurm, submitit_local or local_parallel)"
        raise UserError(f"{str(error).splitlines()[0]}{hint}") from None
    check_resolvable(cfg)
    validate(cfg)
    return cfg


def _cell_plan(
    decl, cell: Cell, seed_list: list[int], extra: list[str], device: str, bench_dir: Path
) -> tuple[CellPlan, DictConfig]:
    cfg = _compose([*cell.overrides, f"seed={seed_list[0]}", *extra])
    folder = run_folder.run_dir(cfg).parent
    status = {seed: run_folder.status(run_folder.seed_dir(folder, seed)) for seed in seed_list}
    names = evaluation_files(decl, cfg.peft.num_experts) if decl.kind == "inference" else []
    evaluations = sum(
        not run_folder.evaluation_file(run_folder.seed_dir(folder, k), n).is_file() for k in seed_list for n in names
    )
    eval_samples = sizes.EVAL.get(cfg.task.name, 0)
    if cfg.data.max_eval_samples:
        eval_samples = min(eval_samples, cfg.data.max_eval_samples) if eval_samples else cfg.data.max_eval_samples
    samples, n_views = training_samples(cfg), views(cfg)
    beam = (0, 0, 0)
    if cfg.task.family in GENERATION_FAMILIES:
        inputs = sizes.GENERATION_INPUTS.get(cfg.task.name, eval_samples)
        if cfg.data.max_eval_samples:
            inputs = min(inputs, cfg.data.max_eval_samples)
        beam = (inputs, int(cfg.generation.num_beams), int(cfg.generation.max_new_tokens))
        eval_samples = 0  # the generation tasks' evaluation is the decode
    plan = CellPlan(
        cell,
        folder,
        status,
        samples,
        n_views,
        row_tokens(cfg, decl, cell.task),
        weights(cfg),
        rate(cfg, device, n_views, bench_dir),
        prefix_tokens(cfg),
        eval_passes(cfg, samples),
        eval_samples,
        beam,
        evaluations,
    )
    return plan, cfg


def make_plan(
    table_id: str,
    profile: str,
    seed_count: int | None,
    extra: list[str],
    bench_dir: Path,
    hydra_overrides: list[str] | None = None,
) -> TablePlan:
    """Compose and check every cell of `table_id` under `profile` (with `hydra_overrides`, e.g. the launcher, before
    the user's `extra`); the run statuses and the hours left."""
    decl = declaration.load(table_id)
    seed_list = declaration.seeds(decl, seed_count)
    device = str(declaration.profile_of(decl, profile).get("device", "gpu" if profile == "paper" else "cpu"))
    cell_plans = []
    root = declaration.output_root(declaration.grid_source(decl), profile)
    for cell in declaration.cells(decl, profile):
        plan, cfg = _cell_plan(decl, cell, seed_list, [*(hydra_overrides or []), *extra], device, bench_dir)
        cell_plans.append(plan)
        root = str(cfg.output_root)  # the composed one: a user's output_root= override wins, as for the runs
    return TablePlan(decl, profile, seed_list, device, root, cell_plans)
