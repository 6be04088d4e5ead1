"""The config tree lives in conf/ at the repository root; an editable install and a wheel both find it."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import tomllib
from setuptools import find_namespace_packages, find_packages

from adamix_runner.config.compose import CONFIG_DIR

ROOT = Path(__file__).resolve().parents[2]
FIND_CONFIG = (
    "import adamix_runner.config.compose as c; print(c.CONFIG_DIR); "
    "print(c.compose_config('task=mrpc', 'peft=adamix').peft.num_experts)"
)


def test_checkout_reads_the_root_conf_tree():
    assert Path(CONFIG_DIR) == ROOT / "conf"
    assert (Path(CONFIG_DIR) / "config.yaml").is_file()


def test_the_explicit_package_list_names_every_package():
    """pyproject lists packages by hand (conf/ is mapped from outside src/): a new subpackage must be added there."""
    listed = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    plugins = find_namespace_packages(ROOT / "src", include=["hydra_plugins.*"], exclude=["*__pycache__*"])
    assert plugins == ["hydra_plugins.adamix_table_sweeper"]
    assert sorted(listed) == sorted([*find_packages(ROOT / "src"), *plugins, "adamix_runner.conf"])


def test_a_wheel_carries_the_conf_tree_and_finds_it_from_any_folder(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", tmp_path, ROOT],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("adamix_runner-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {n.removeprefix("adamix_runner/conf/") for n in names if n.startswith("adamix_runner/conf/")}
    in_checkout = {str(p.relative_to(ROOT / "conf")) for p in (ROOT / "conf").rglob("*.yaml")}
    assert in_checkout <= shipped
    assert "adamix_runner/report/paper_results.yaml" in names  # adamix-report's paper numbers are package data

    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", site, wheel],
        check=True,
        capture_output=True,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = subprocess.run(
        [sys.executable, "-c", FIND_CONFIG],
        cwd=elsewhere,
        env={"PYTHONPATH": str(site), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert out == [str(site / "adamix_runner" / "conf"), "4"]
