"""Every config in conf/ composes and validates; bad values are refused before anything heavy runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from adamix_runner.config.checks import validate
from adamix_runner.config.compose import CONFIG_DIR
from adamix_runner.errors import UserError
from adamix_runner.run_folder import config_hash, run_dir
from tests.conftest import compose_config


def _names(group: str) -> list[str]:
    return sorted(p.stem for p in (Path(CONFIG_DIR) / group).glob("*.yaml"))


@pytest.mark.parametrize(
    "override",
    [f"{group}={name}" for group in ("task", "model", "peft", "train") for name in _names(group)],
)
def test_every_config_in_every_group_composes_and_validates(override):
    generation = override in ("task=e2e", "task=webnlg", "task=dart")
    causal = override.startswith("model=") and override.split("=")[1] in (
        "gpt2",
        "gpt2-medium",
        "tiny-gpt2",
        "smollm2",
    )
    extra = ["model=tiny-gpt2"] if generation else ["task=e2e"] if causal else []
    extra += ["task=fewshot_sst2"] if override == "peft=prompt_tuning" else []  # soft prompts need a prompt task
    cfg = compose_config(override, *extra)
    validate(cfg)
    assert cfg.task.primary_metric.split("/")[0] in cfg.task.eval_splits


@pytest.mark.parametrize("peft", _names("peft"))
def test_every_method_plans_on_a_standard_backbone(peft):
    task = "task=fewshot_sst2" if peft == "prompt_tuning" else "task=mrpc"  # soft prompts need a prompt task
    validate(compose_config(task, "model=roberta-large", "model.pretrained=false", f"peft={peft}"))


@pytest.mark.parametrize("experiment", _names("experiment"))
def test_every_experiment_composes(experiment):
    cfg = compose_config(f"experiment={experiment}")
    validate(cfg)


@pytest.mark.parametrize("logger", _names("logger"))
def test_every_logger_composes(logger):
    validate(compose_config(f"logger={logger}"))


def test_default_is_the_offline_demo():
    cfg = compose_config()
    assert (cfg.task.name, cfg.model.name, cfg.peft.method) == ("polarity", "minilm", "adamix")
    assert (cfg.peft.adapter_dim, cfg.peft.num_experts, cfg.peft.share) == (16, 4, "up")
    assert Path(cfg.model.path, "model.safetensors").exists()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("peft.share=sideways", "peft.share must be one of ('up', 'down', 'none'), got 'sideways'"),
        ("peft.adapter_dim=0", "peft.adapter_dim must be > 0, got 0"),
        ("peft.num_experts=0", "peft.num_experts must be >= 1, got 0"),
        ("peft.inference=vote", "peft.inference must be one of ('merge', 'random', 'fixed', 'ensemble'), got 'vote'"),
        ("peft.fixed_expert=4", "peft.fixed_expert must be in [0, 4), got 4"),
        ("peft.method=magic", "peft.method must be one of"),
        ("peft.consistency_weight=-1", "peft.consistency_weight must be >= 0"),
        ("train.lr=0", "train.lr must be > 0"),
        ("train.batch_size=-1", "train.batch_size must be > 0"),
        ("train.select=worst", "train.select='worst' is not one of last, best"),
        ("data.max_train_samples=0", "data.max_train_samples must be a positive number or null"),
        ("eval_only=true", "eval_only=true needs adapter_path="),
        ("train.num_workers=-1", "train.num_workers must be >= 0, got -1"),
        ("model.attn_implementation=flash", "model.attn_implementation='flash' is not one of eager, sdpa,"),
    ],
)
def test_bad_values_are_refused_with_a_clear_message(override, message):
    with pytest.raises(UserError, match="^" + re.escape(message)):
        validate(compose_config(override))


def test_share_down_with_one_expert_is_fine():
    validate(compose_config("peft.share=down", "peft.num_experts=1"))


def test_run_dir_is_deterministic_and_ignores_seed_and_logger(tmp_path):
    base = compose_config(f"output_root={tmp_path}")
    same = compose_config(f"output_root={tmp_path}", "logger=none")
    other_seed = compose_config(f"output_root={tmp_path}", "seed=3")
    other_dim = compose_config(f"output_root={tmp_path}", "peft.adapter_dim=8")
    assert run_dir(base) == run_dir(same)
    assert run_dir(other_seed) == run_dir(base).parent / "seed3"
    assert config_hash(other_dim) != config_hash(base)
    assert run_dir(base).relative_to(tmp_path).parts[:4] == ("runs", "polarity", "minilm", "adamix")


def test_loader_workers_and_log_interval_stay_out_of_the_hash_but_batch_order_does_not():
    base = compose_config()
    assert config_hash(compose_config("train.num_workers=4", "train.log_every_steps=50")) == config_hash(base)
    assert config_hash(compose_config("train.group_by_length=true")) != config_hash(base)
    assert config_hash(compose_config("model.attn_implementation=eager")) != config_hash(base)


def test_hub_attention_kernels_pass_validation():
    validate(compose_config("model.attn_implementation=kernels-community/flash-attn"))


def test_unknown_key_fails_at_compose():
    with pytest.raises(Exception, match="adapter_dimm"):
        compose_config("peft.adapter_dimm=8")


def test_config_is_plain_yaml_round_trip():
    cfg = compose_config()
    assert OmegaConf.create(OmegaConf.to_yaml(cfg, resolve=True)).peft.num_experts == 4
