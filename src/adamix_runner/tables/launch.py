"""Turn a declared table into commands: one `adamix-run` multirun, `adamix-evaluate` for inference tables, then
`adamix-report`. The three command lines are built here and nowhere else."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from adamix_runner.errors import UserError
from adamix_runner.run_folder import seed_dir
from adamix_runner.tables.plan import TablePlan

LAUNCHERS = ("basic", "local_parallel", "slurm", "submitit_local")  # submitit_local: the SLURM path as local jobs


def tool(name: str) -> str:
    """A console script of this install (next to the interpreter), else from PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.is_file() else shutil.which(name)
    if found is None:
        raise UserError(f"{name} is not installed in this environment (pip install -e . provides it)")
    return found


def launcher_overrides(launcher: str) -> list[str]:
    """The Hydra override that selects `launcher`; PLAN composes every cell with it, so that the user's
    hydra.launcher.* keys compose (and a misspelt one fails) before anything is launched."""
    if launcher not in LAUNCHERS:
        raise UserError(f"LAUNCHER must be one of {', '.join(LAUNCHERS)}, not '{launcher}'")
    return [] if launcher == "basic" else [f"hydra/launcher={launcher}"]


def train_command(plan: TablePlan, launcher: str, extra: list[str]) -> list[str]:
    """One Hydra multirun over every (cell x seed), the longest cells first: the table sweeper expands the
    declaration (hydra_plugins) in the order PLAN gives it."""
    hydra_launcher = launcher_overrides(launcher)
    order = ",".join(map(str, plan.longest_first()))
    command = [
        tool("adamix-run"),
        "-m",
        "hydra/sweeper=adamix_table",
        f"hydra.sweeper.table={plan.decl.id}",
        f"hydra.sweeper.profile={plan.profile}",
        f"hydra.sweeper.seeds={len(plan.seeds)}",
        f"hydra.sweeper.order=[{order}]",
        f"output_root={plan.root}",
        *hydra_launcher,
    ]
    return [*command, *extra]


def evaluate_command(plan: TablePlan, run_dirs: list[Path]) -> list[str]:
    """Evaluate finished AdaMix runs under the table's inference rules (Table 7, Figure 5): no retraining."""
    rules = ",".join(str(rule) for rule in plan.decl.rules)
    seeds = str(int(plan.decl.get("random_eval_seeds", 1)))
    return [tool("adamix-evaluate"), *map(str, run_dirs), "--rules", rules, "--random-eval-seeds", seeds]


def report_command(plan: TablePlan) -> list[str]:
    """The report of the seeds that ran (SEEDS=n), not the declaration's default."""
    return [
        tool("adamix-report"),
        f"table={plan.decl.id}",
        f"runs={plan.root}",
        f"profile={plan.profile}",
        f"seeds={len(plan.seeds)}",
    ]


def _call(command: list[str]) -> int:
    print("+ " + " ".join(command), flush=True)
    return subprocess.run(command, check=False).returncode


def launch(plan: TablePlan, launcher: str, extra: list[str]) -> int:
    """Train what is left (completed run folders are skipped by the runner), evaluate, report. A failed cell fails
    alone: the multirun goes on, the report shows it as failed, and the exit code is non-zero."""
    code = _call(train_command(plan, launcher, extra)) if plan.cells else 0
    if plan.decl.kind == "inference":
        finished = [
            seed_dir(c.folder, seed)
            for c in plan.refresh().cells
            for seed in plan.seeds
            if c.status[seed] == "completed"
        ]
        code = max(code, _call(evaluate_command(plan, finished)) if finished else 1)
    return max(code, _call(report_command(plan)))
