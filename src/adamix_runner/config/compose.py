"""The config `adamix-run` would run, composed from the installed conf/ tree without running anything.

A library function (tables/plan.py, scripts, tests) rather than part of the `adamix-run` face, which imports it.
"""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

import adamix_runner.conf
from adamix_runner.config import register_configs

CONFIG_DIR = str(Path(adamix_runner.conf.__file__).parent)

register_configs()  # conf/config.yaml extends the schema: it must be in the ConfigStore before any composition


def compose_config(*overrides: str, with_hydra: bool = False) -> DictConfig:
    """The config `adamix-run <overrides>` would run (tests, the benchmark, the table planner); `with_hydra` keeps
    the `hydra` node (launcher settings)."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides), return_hydra_config=with_hydra)
