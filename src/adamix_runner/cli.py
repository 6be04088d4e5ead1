"""`adamix-run`: compose the config with Hydra, run it, turn user mistakes into a message and exit code 2."""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from adamix_runner.config import register_configs
from adamix_runner.errors import UserError

CONFIG_DIR = str(Path(__file__).parent / "conf")
EXIT_USER_ERROR = 2

register_configs()


@hydra.main(config_path=CONFIG_DIR, config_name="config", version_base="1.3")
def _main(cfg: DictConfig) -> float | None:
    """Returns the primary metric, which Hydra sweepers optimise."""
    from adamix_runner.run import run

    try:
        result = run(cfg)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    return result.record.get("metrics", {}).get(cfg.task.primary_metric)


def main() -> None:
    _main()
