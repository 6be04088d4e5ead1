"""The run folder's hash (survivors of `make mutate`, docs/TESTING.md): it is taken over the resolved config, so a
value that reaches the run through an interpolation moves the run when it changes, and not over the keys' order."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from adamix_runner.config.compose import compose_config
from adamix_runner.run_folder import config_hash, run_dir


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


@pytest.mark.parametrize(
    ("overrides", "folder"),
    [
        ((), "polarity/minilm/adamix/dd10d96c/seed0"),
        (("task=mrpc", "model=roberta-large"), "mrpc/roberta-large/adamix/6e4c847b/seed0"),
        (("task=e2e", "model=gpt2", "peft=adamix_lora"), "e2e/gpt2/adamix_lora/96662cbd/seed0"),
        (
            ("task=fewshot_sst2", "model=roberta-large", "peft=adamix_list"),
            "fewshot_sst2/roberta-large/adamix/77e1358e/seed0",
        ),
        (("peft=unipelt", "model=bert-base", "task=rte"), "rte/bert-base/unipelt/9dcda3ec/seed0"),
    ],
)
def test_shipped_configs_keep_their_run_folders(overrides, folder):
    """Pinned folder names: a refactor that changes a hash strands every finished run and checkpoint (changing
    identity on purpose updates these pins and says how runs carry over: `python -m adamix_runner.tables.rehash`)."""
    assert run_dir(compose_config(*overrides)) == Path("outputs/runs") / folder
