"""The run folder (DESIGN §4): where a config's run lives and what it leaves there, the contract between
`adamix-run` and every tool that reads a run (`adamix-evaluate`, `adamix-export`, `adamix-report`, PLAN).

    <output_root>/runs/<task>/<model>/<peft>/<hash>/seed<k>/   run_dir(cfg): the same command, the same folder
      .hydra/config.yaml       CONFIG       the composed config
      metrics.jsonl            METRICS      one JSON object per logged step / evaluation
      results.json             RESULTS      the final record, written last, atomically
      adapter/                 ADAPTER      the saved adaptation, its unmerged experts beside it (artifacts.py)
      model/                   MODEL        full fine-tuning: the whole model instead of adapter/ (artifacts.py)
      checkpoint/step-<n>/     CHECKPOINT   the latest resumable state (training/checkpoint.py)
      predictions/             PREDICTIONS  generation: each evaluated split's decoded outputs
      evaluations/<name>.json  EVALUATIONS  the run under another inference rule (adamix-evaluate; evaluation_name)
      evaluations/<name>/                   generation: that evaluation's predictions/
      export/<format>/         EXPORT       adamix-export's default output

Torch-free (OmegaConf only): the report and PLAN read run folders without the training stack.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from adamix_runner.errors import UserError

RUNS = "runs"
CONFIG = ".hydra/config.yaml"
METRICS = "metrics.jsonl"
RESULTS = "results.json"
ADAPTER = "adapter"
MODEL = "model"
CHECKPOINT = "checkpoint"
STEP_PREFIX = "step-"  # checkpoint/step-<n>: one folder per saved step
PREDICTIONS = "predictions"
EVALUATIONS = "evaluations"
EXPORT = "export"
ABSENT = "absent"  # the status of a run without results.json, or whose record names no status

# Keys that do not change what is computed, so they stay out of the run folder's hash (a rerun with more
# DataLoader workers resumes the same run).
UNHASHED_KEYS = ("seed", "logger", "output_root", "overwrite")
UNHASHED_TRAIN_KEYS = ("num_workers", "log_every_steps", "checkpoint_every_minutes")
# While a run's identity is computed, `${pkg_path:...}` (config.package_path) resolves to a name that says which
# package file it is, not where the package is installed (see hashed_view).
PACKAGE_NAMES = contextvars.ContextVar("package_names_not_places", default=False)


def hashed_view(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config without the keys that do not change results: what a run computes, never where this
    install lives. A file of an installed package (`${pkg_path:pkg,sub}`) enters as `pkg:<pkg>/<sub>`; every other
    path (model.path, task.data_dir, data files) enters as written, character for character (README "What a run
    leaves"). Generic over the config: a new key enters the hash unless it is listed in UNHASHED_*."""
    token = PACKAGE_NAMES.set(True)
    try:
        resolved = OmegaConf.to_container(cfg, resolve=True)
    finally:
        PACKAGE_NAMES.reset(token)
    view = {key: value for key, value in resolved.items() if key not in UNHASHED_KEYS}
    view["train"] = {key: value for key, value in view["train"].items() if key not in UNHASHED_TRAIN_KEYS}
    return view


def config_hash(cfg: DictConfig) -> str:
    blob = json.dumps(hashed_view(cfg), sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:8]


def seed_dir(cell: Path, seed: int) -> Path:
    """One seed's run folder inside the folder of its config (run_dir(cfg).parent)."""
    return cell / f"seed{seed}"


def run_dir(cfg: DictConfig) -> Path:
    """outputs/runs/<task>/<model>/<peft>/<hash>/seed<k>: the same command lands in the same folder."""
    cell = Path(cfg.output_root) / RUNS / cfg.task.name / cfg.model.name / cfg.peft.method / config_hash(cfg)
    return seed_dir(cell, cfg.seed)


def write_json_atomic(path: Path, record: dict[str, Any]) -> None:
    """Write to a temporary sibling, then rename: readers see the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as handle:
        json.dump(record, handle, indent=2, sort_keys=True, default=str)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(handle.name, path)


def read_json(path: Path) -> dict[str, Any] | None:
    """The file's object, None when it does not exist; a corrupt file is the user's to remove or restore."""
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise UserError(f"{path} is not valid JSON ({error}); remove or restore it.") from error


def status(folder: Path) -> str:
    """completed | failed | interrupted | planned as results.json says, ABSENT where there is none yet."""
    record = read_json(folder / RESULTS) if (folder / RESULTS).is_file() else None
    return (record or {}).get("status", ABSENT)


def load_config(folder: Path) -> DictConfig:
    """The config a run saved; a folder without one is not a run folder, which is said before anything heavy."""
    path = folder / CONFIG
    if not path.exists():
        raise UserError(f"{folder} is not a run folder (no {CONFIG}); pass outputs/runs/.../seed<k>.")
    return OmegaConf.load(path)


@dataclass(frozen=True)
class Evaluation:
    """One evaluation of a run under an inference rule: the random-routing seed or the expert, and its file's name."""

    rule: str
    eval_seed: int | None = None
    expert: int | None = None

    @property
    def name(self) -> str:
        return evaluation_name(self.rule, self.eval_seed, self.expert)


def evaluation_name(rule: str, seed: int | None = None, expert: int | None = None) -> str:
    """evaluations/<name>.json: `random-seed<k>`, `fixed-expert<i>`, else the rule itself (merge, ensemble)."""
    if rule == "random":
        return f"random-seed{seed}"
    if rule == "fixed":
        return f"fixed-expert{expert}"
    return rule


def evaluations(rules: list[str], num_experts: int, seeds: int, fixed_expert: int = 0) -> list[Evaluation]:
    """The evaluations that `rules` ask for, without duplicates, in the order given: `random` once per evaluation
    seed 0..seeds-1, `fixed` on `fixed_expert` (0: the paper's first module), `experts` each single expert."""
    chosen: list[Evaluation] = []
    for rule in rules:
        if rule == "random":
            chosen += [Evaluation("random", eval_seed=k) for k in range(seeds)]
        elif rule == "fixed":
            chosen.append(Evaluation("fixed", expert=fixed_expert))
        elif rule == "experts":
            chosen += [Evaluation("fixed", expert=i) for i in range(num_experts)]
        else:
            chosen.append(Evaluation(str(rule)))
    return list(dict.fromkeys(chosen))


def evaluation_names(rules: list[str], num_experts: int, seeds: int, fixed_expert: int = 0) -> list[str]:
    return [evaluation.name for evaluation in evaluations(rules, num_experts, seeds, fixed_expert)]


def evaluation_file(folder: Path, name: str) -> Path:
    return folder / EVALUATIONS / f"{name}.json"
