"""Backbone loading: the attention kernel the config names reaches the model, for encoders and causal LMs."""

from __future__ import annotations

import pytest
import torch

from adamix_runner.errors import UserError
from adamix_runner.models.causal_lm import load_causal_lm
from adamix_runner.models.encoder import load_model
from adamix_runner.models.prompt import load_prompt_model
from tests.conftest import compose_config


@pytest.mark.parametrize(("choice", "expected"), [(None, "sdpa"), ("eager", "eager")])
def test_attention_implementation_reaches_the_encoder(choice, expected):
    cfg = compose_config("model=tiny-bert", f"model.attn_implementation={choice or 'null'}")
    assert load_model(cfg.model, num_labels=2).config._attn_implementation == expected


def test_eager_and_sdpa_attention_compute_the_same_logits():
    logits = {}
    for choice in ("eager", "sdpa"):
        cfg = compose_config("model=tiny-gpt2", f"model.attn_implementation={choice}")
        torch.manual_seed(0)
        model = load_causal_lm(cfg.model).eval()
        assert model.config._attn_implementation == choice
        logits[choice] = model(torch.arange(1, 17).view(2, 8)).logits
    torch.testing.assert_close(logits["eager"], logits["sdpa"], atol=1e-5, rtol=1e-4)


def _dropouts(model) -> set[float]:
    return {m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)}


OFFICIAL_NLG = [f"+model.config_overrides.{key}=0.0" for key in ("resid_pdrop", "embd_pdrop", "attn_pdrop")]


@pytest.mark.parametrize(("overrides", "expected"), [([], {0.1}), (OFFICIAL_NLG, {0.0})])
def test_config_overrides_reach_a_pretrained_load(tmp_path, overrides, expected):
    """The official NLG GPT-2 has no dropout: a saved (pretrained-path) GPT-2 loads with the three set to 0."""
    random = compose_config("model=tiny-gpt2")
    torch.manual_seed(0)
    load_causal_lm(random.model).save_pretrained(tmp_path / "gpt2")
    cfg = compose_config("model=tiny-gpt2", "model.pretrained=true", f"model.path={tmp_path / 'gpt2'}", *overrides)
    model = load_causal_lm(cfg.model)
    assert _dropouts(model) == expected
    assert model.config.resid_pdrop == model.config.embd_pdrop == model.config.attn_pdrop == expected.pop()


def test_config_overrides_reach_a_random_init_and_the_encoder():
    cfg = compose_config("model=tiny-bert", "+model.config_overrides.hidden_dropout_prob=0.0")
    assert load_model(cfg.model, num_labels=2).config.hidden_dropout_prob == 0.0


def test_config_overrides_refuse_a_key_the_config_lacks(tmp_path):
    cfg = compose_config("model=tiny-gpt2", "+model.config_overrides.resid_dropout=0.0")
    with pytest.raises(UserError, match=r"names \['resid_dropout'\], which the gpt2 config"):
        load_causal_lm(cfg.model)


def _prompt_lm(model_cfg):
    return load_prompt_model(model_cfg).lm


PROMPT = ("task=fewshot_sst2",)
KINDS = {  # kind -> (its entry function, its task, a model of that kind, a dropout key of its config)
    "classification": (lambda model_cfg: load_model(model_cfg, 2), (), "tiny-bert", "hidden_dropout_prob"),
    "generation": (load_causal_lm, (), "tiny-gpt2", "resid_pdrop"),
    "prompt_masked": (_prompt_lm, PROMPT, "tiny-roberta", "hidden_dropout_prob"),
    "prompt_causal": (_prompt_lm, PROMPT, "tiny-gpt2", "resid_pdrop"),
}


@pytest.mark.parametrize("pretrained", [False, True])
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_config_overrides_reach_every_kind_on_every_path(kind, pretrained, tmp_path):
    """Every entry function goes through models/load.py: the override sets the config and builds the modules."""
    load, task, model, key = KINDS[kind]
    overrides = (*task, f"model={model}", f"+model.config_overrides.{key}=0.25")
    if pretrained:
        torch.manual_seed(0)
        load(compose_config(*task, f"model={model}").model).save_pretrained(tmp_path)
        overrides += ("model.pretrained=true", f"model.path={tmp_path}")
    loaded = load(compose_config(*overrides).model)
    assert getattr(loaded.config, key) == 0.25
    assert 0.25 in _dropouts(loaded)
