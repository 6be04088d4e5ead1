"""`make lint` runs import-linter over [tool.importlinter] in pyproject.toml; a copy of the package with deliberate
inversions breaks exactly the contracts they violate (direct and indirect), and leaves the others kept."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("importlinter")
ROOT = Path(__file__).resolve().parents[2]
INVERSIONS = {  # module file -> the import appended to it
    "adamix_runner/report/runs.py": "import torch",
    "adamix_runner/adaptation/spec.py": "from adamix_runner import tracking",
    "adamix_runner/run_folder.py": "from adamix_runner.cli import evaluate",
}


def test_lint_imports_fails_on_deliberate_inversions(tmp_path):
    shutil.copytree(ROOT / "src", tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    for module, line in INVERSIONS.items():
        with (tmp_path / "src" / module).open("a") as file:
            file.write(f"\n{line}\n")
    lint = Path(sys.executable).with_name("lint-imports")
    env = {"PYTHONPATH": str(tmp_path / "src"), "PATH": ""}
    out = subprocess.run([lint, "--no-cache"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 1, out.stdout + out.stderr
    for broken in (
        "adaptation/ imports no Hydra, OmegaConf, tasks/ or tracking BROKEN",
        "report/ imports nothing of the training stack BROKEN",
        "run_folder.py imports neither torch nor Hydra BROKEN",  # run_folder -> cli.evaluate -> ... -> torch
        "no library module imports an entry point BROKEN",
    ):
        assert broken in out.stdout, out.stdout
    for chain in (
        "adamix_runner.adaptation.spec -> adamix_runner.tracking",
        "adamix_runner.report.runs -> torch",
        "adamix_runner.run_folder -> adamix_runner.cli.evaluate",
    ):
        assert chain in out.stdout, out.stdout
    assert "only hf/ imports hf/ KEPT" in out.stdout
    assert "sources/ imports neither tasks/ nor models/, nor torch or transformers KEPT" in out.stdout
