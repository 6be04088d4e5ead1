"""The run folder's hash (survivors of `make mutate`, docs/TESTING.md): it is taken over the resolved config, so a
value that reaches the run through an interpolation moves the run when it changes, and not over the keys' order."""

from __future__ import annotations

from omegaconf import OmegaConf

from adamix_runner.cli import compose_config
from adamix_runner.config import config_hash, run_dir


def test_a_value_resolved_from_the_environment_is_part_of_the_run_identity(monkeypatch):
    monkeypatch.setenv("ADAMIX_TEST_MODEL", "/models/a")
    cfg = compose_config("model.path=${oc.env:ADAMIX_TEST_MODEL}")
    first, folder = config_hash(cfg), run_dir(cfg)
    monkeypatch.setenv("ADAMIX_TEST_MODEL", "/models/b")  # another model behind the same command line
    assert config_hash(cfg) != first and run_dir(cfg) != folder
    monkeypatch.setenv("ADAMIX_TEST_MODEL", "/models/a")
    assert config_hash(cfg) == first


def test_the_same_config_with_its_keys_in_another_order_lands_in_the_same_folder():
    cfg = compose_config("peft.adapter_dim=8")
    plain = OmegaConf.to_container(cfg, resolve=False)  # interpolations kept, as composed
    reordered = OmegaConf.create({key: _reversed(plain[key]) for key in reversed(list(plain))})
    assert list(reordered) != list(cfg) and config_hash(reordered) == config_hash(cfg)


def _reversed(node):
    return {key: _reversed(node[key]) for key in reversed(list(node))} if isinstance(node, dict) else node


def test_the_hash_is_eight_hex_digits_so_existing_run_folders_stay_found():
    digest = config_hash(compose_config())
    assert len(digest) == 8 and int(digest, 16) >= 0
