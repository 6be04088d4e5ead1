"""Defaults kept in two places agree: the schema's `peft`, `fewshot` and `generation` defaults and the YAML's values,
and the schema's `peft` keys and the library's AdaptationSpec (api.py builds it without any YAML). `train.*` has
one source instead (the schema is all MISSING: test_hardening.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from adamix_runner.adaptation import AdaptationSpec
from adamix_runner.config import FewShotConfig, GenerationConfig, PeftConfig
from adamix_runner.config.compose import CONFIG_DIR, compose_config

# Keys of one side only, each with why.
SCHEMA_ONLY = {"consistency_weight"}  # a loss weight (training/losses.py), not part of the model's adaptation
SPEC_ONLY = {
    "train_pooler",  # comes from model.train_pooler (config/checks.adaptation_spec)
    "lora_targets",  # the runner keeps the paper's query/value; only the library face (api.py) picks others
}
# Defaults that differ on purpose, each with why.
DIFFERENT = {
    "num_experts": (4, 1),  # the schema's default method is AdaMix (M = 4); the spec's default is a single module
    "adapter_activation": (None, "gelu"),  # null: the official code's per task kind, resolved by adaptation_spec
}


def _defaults(cls) -> dict:
    values = {}
    for item in dataclasses.fields(cls):
        if item.default_factory is not dataclasses.MISSING:
            values[item.name] = item.default_factory()
        elif item.default is not dataclasses.MISSING:
            values[item.name] = item.default
    return values


@pytest.mark.parametrize(("group", "schema"), [("fewshot", FewShotConfig), ("generation", GenerationConfig)])
def test_the_yaml_states_the_schema_defaults(group, schema):
    """conf/config.yaml's values (commented with their sources) are the dataclass defaults that code calling
    GenerationConfig(...) directly gets."""
    yaml = OmegaConf.load(Path(CONFIG_DIR) / "config.yaml")[group]
    assert set(yaml) <= set(_defaults(schema))
    assert OmegaConf.to_container(yaml) == {key: _defaults(schema)[key] for key in yaml}
    assert OmegaConf.to_container(compose_config()[group]) == _defaults(schema)


def test_the_peft_schema_defaults_are_the_default_method():
    """`peft: adamix` is config.yaml's default: its YAML and the schema's defaults must be the same method."""
    assert OmegaConf.to_container(compose_config().peft) == _defaults(PeftConfig)


def test_the_peft_schema_and_the_adaptation_spec_agree_in_names_and_defaults():
    schema, spec = _defaults(PeftConfig), _defaults(AdaptationSpec)
    schema_names = {item.name for item in dataclasses.fields(PeftConfig)}
    spec_names = {item.name for item in dataclasses.fields(AdaptationSpec)}
    assert schema_names - spec_names == SCHEMA_ONLY
    assert spec_names - schema_names == SPEC_ONLY
    assert {"method", "adapter_dim"} == spec_names - set(spec)  # the spec's required fields; the schema fills them
    shared = (set(schema) & set(spec)) - set(DIFFERENT)
    normalised = {key: tuple(value) if isinstance(value, list) else value for key, value in schema.items()}
    assert {key: normalised[key] for key in shared} == {key: spec[key] for key in shared}
    assert {key: (schema[key], spec[key]) for key in DIFFERENT} == DIFFERENT
