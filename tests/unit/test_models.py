"""Backbone loading: the attention kernel the config names reaches the model, for encoders and causal LMs."""

from __future__ import annotations

import pytest
import torch

from adamix_runner.models import load_model
from adamix_runner.models_lm import load_causal_lm
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
