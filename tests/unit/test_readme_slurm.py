"""Every command of the README's "Running a table on a SLURM cluster" is run by a test: each `make` line maps to
the `adamix-table` arguments the Makefile gives it, its hydra.launcher.* keys compose with its launcher here, the
whole plan composes (slow), and the submitit_local line is the one tests/integration/test_table_launch.py runs."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from adamix_runner.config.compose import compose_config
from adamix_runner.tables import cli
from tests.integration.test_table_launch import SUBMITIT_LOCAL_SMOKE

ROOT = Path(__file__).resolve().parents[2]


def _section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("## Running a table on a SLURM cluster")
    return text[start : text.index("\n## ", start + 1)]


def _make_lines() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", _section(), re.S)
    return [line for block in blocks for line in block.splitlines() if line.startswith("make ")]


def table_arguments(line: str) -> list[str]:
    """What the Makefile's TABLE_FLAGS make of `make <table> VAR=... ARGS="..."`."""
    _, table, *assignments = shlex.split(line)
    values = dict(assignment.split("=", 1) for assignment in assignments)
    argv = [table, "--profile", values.get("PROFILE", "paper")]
    argv += ["--seeds", values["SEEDS"]] if "SEEDS" in values else []
    argv += ["--launcher", values["LAUNCHER"]] if "LAUNCHER" in values else []
    argv += ["--plan"] if values.get("PLAN") else []
    return argv + values.get("ARGS", "").split()


def test_the_section_has_the_commands_and_the_submitit_local_line_is_the_tested_one():
    lines = _make_lines()
    assert len(lines) == 4 and sum("LAUNCHER=slurm" in line for line in lines) == 3
    assert table_arguments(lines[-1]) == SUBMITIT_LOCAL_SMOKE
    assert "export HF_HOME=/shared/hf HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1" in _section()


@pytest.mark.parametrize("line", [line for line in _make_lines() if "LAUNCHER=slurm" in line])
def test_each_cluster_line_parses_and_its_launcher_keys_compose(line):
    argv = table_arguments(line)
    args = cli._arguments(argv)
    launcher_keys = [o for o in args.overrides if o.startswith("hydra.launcher.")]
    cfg = compose_config(f"hydra/launcher={args.launcher}", *launcher_keys, with_hydra=True)
    assert cfg.hydra.launcher._target_.endswith("SlurmLauncher") and cfg.hydra.launcher.partition == "gpu"
    assert any(o.startswith("output_root=/shared/") for o in args.overrides)


@pytest.mark.slow
@pytest.mark.parametrize("line", [line for line in _make_lines() if "LAUNCHER=slurm" in line])
def test_each_cluster_line_plans_every_job(line, capsys):
    argv = table_arguments(line)
    with pytest.raises(SystemExit) as done:
        cli.main([*argv, "--plan"] if "--plan" not in argv else argv)
    assert done.value.code == 0
    assert "56 cells x 3 seeds = 168 runs" in capsys.readouterr().out
