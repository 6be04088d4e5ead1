"""`adamix-run`: compose the config with Hydra, run it, turn user mistakes into a message and exit code 2.

Exit codes: 0 done (or already completed), 1 a sweep with failed points or an unexpected error,
2 bad input (no traceback), 130/143/140 interrupted by SIGINT/SIGTERM/SIGUSR2 (a checkpoint was saved). Inside a
submitit job, USR2 is then handed to submitit, which requeues the job and exits with its own code.
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.plugins import Plugins
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from adamix_runner.cli import sweep_failures
from adamix_runner.cli.preflight import check_overrides, check_writable, output_root
from adamix_runner.config.compose import CONFIG_DIR  # importing it registers the schema that hydra.main composes
from adamix_runner.errors import UserError
from hydra_plugins.adamix_table_sweeper.table_sweeper import TableSweeper

EXIT_USER_ERROR = 2


@hydra.main(config_path=CONFIG_DIR, config_name="config", version_base="1.3")
def _main(cfg: DictConfig) -> float | None:
    """Returns the primary metric, which Hydra sweepers optimise."""
    from adamix_runner.run import Interrupted, run

    hydra_cfg = HydraConfig.get()
    try:
        result = run(cfg)
    except Interrupted as stop:
        print(f"interrupted: {stop}", file=sys.stderr, flush=True)
        stop.hand_over()  # submitit's requeue (USR2 at a SLURM time limit): it exits the job itself
        sys.exit(stop.exit_code)
    except Exception as error:
        if hydra_cfg.mode != RunMode.MULTIRUN:
            if not isinstance(error, UserError):
                raise
            print(f"error: {error}", file=sys.stderr)
            sys.exit(EXIT_USER_ERROR)
        print(f"error in sweep point #{hydra_cfg.job.num}: {error}", file=sys.stderr)
        sweep_failures.log_failure(list(hydra_cfg.overrides.task), error)
        return None
    return result.record.get("metrics", {}).get(cfg.task.primary_metric)


def _drop_rejected(arguments: list[str]) -> list[str]:
    """Check the overrides; in a sweep (`-m`), wrong values leave the sweep and are reported as failed points."""
    rejected = check_overrides(arguments, Path(CONFIG_DIR))
    if not rejected:
        return arguments
    if not {"-m", "--multirun"} & set(arguments):
        raise UserError(rejected[0].message)
    sweep_failures.reject([(f"{r.argument.partition('=')[0]}={r.value}", r.message) for r in rejected])
    kept = {r.argument: r.kept for r in rejected}
    return [kept.get(argument, argument) for argument in arguments]


def main() -> None:
    try:
        sys.argv[1:] = _drop_rejected(sys.argv[1:])
        root = output_root(sys.argv[1:], OmegaConf.load(Path(CONFIG_DIR) / "config.yaml").output_root)
        if root is not None:
            check_writable(root)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    Plugins.instance().register(TableSweeper)  # an editable install hides hydra_plugins/ from Hydra's own scan
    _main()
    if sweep_failures.failed_points():
        sys.exit(1)
