"""Parameter counts for the paper's standard architectures, built on the meta device (no download, no memory).

Expected values: method reference §8 (the paper's #Param is one merged adapter per layer, without the head).
"""

from __future__ import annotations

import pytest
import torch
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    GPT2Config,
    GPT2ForSequenceClassification,
    GPT2Model,
    RobertaConfig,
    RobertaForSequenceClassification,
)

from adamix_runner.adaptation import AdaptationSpec, apply, count_parameters

ROBERTA_LARGE = dict(
    vocab_size=50265, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
    max_position_embeddings=514, type_vocab_size=1, pad_token_id=1, num_labels=3,
)  # fmt: skip


def counts(model_cls, config, **spec):
    with torch.device("meta"):
        model = model_cls(config)
    apply(model, AdaptationSpec(method="adamix", num_experts=spec.pop("num_experts", 4), **spec), seed=0)
    return count_parameters(model)


@pytest.mark.parametrize(("share", "adaptation"), [("up", 1_992_192), ("none", 3_245_568), ("down", 2_064_768)])
def test_roberta_large(share, adaptation):
    c = counts(RobertaForSequenceClassification, RobertaConfig(**ROBERTA_LARGE), adapter_dim=16, share=share)
    assert c.inference == 811_392
    assert c.head == 1_052_675
    assert c.trainable == adaptation + c.head
    assert c.backbone == 354_310_144


@pytest.mark.parametrize(("share", "adaptation"), [("up", 2_223_360), ("none", 3_578_112), ("down", 2_249_280)])
def test_bert_base(share, adaptation):
    c = counts(BertForSequenceClassification, BertConfig(num_labels=3), adapter_dim=48, share=share)
    assert c.inference == 894_528
    assert c.head == 2_307
    assert c.trainable == adaptation + c.head
    assert c.backbone == 109_482_240


def test_gpt2_medium_adamix_adapter():
    config = GPT2Config(n_embd=1024, n_layer=24, n_head=16)
    c = counts(GPT2Model, config, adapter_dim=8, num_experts=8, share="up")
    assert c.inference == 417_984
    assert c.trainable == 1_795_584
    assert c.head == 0


# --- every method: the paper's #Param (method reference §7-§8) ---------------------------------------------
# Heads: RoBERTa-large 1,052,675 and BERT-base 2,307 (C = 3), GPT-2 medium score 3,072 (C = 3, no bias).
# Backbones: RoBERTa-large 354,310,144 (no pooler), BERT-base 109,482,240, GPT-2 medium 354,823,168.

GPT2_MEDIUM = dict(n_embd=1024, n_layer=24, n_head=16, num_labels=3, pad_token_id=0)


def method_counts(model_cls, config, **spec):
    with torch.device("meta"):
        model = model_cls(config)
    apply(model, AdaptationSpec(**{"adapter_dim": 16, **spec}), seed=0)
    return count_parameters(model)


def roberta_large(**spec):
    return method_counts(RobertaForSequenceClassification, RobertaConfig(**ROBERTA_LARGE), **spec)


def bert_base(**spec):
    return method_counts(BertForSequenceClassification, BertConfig(num_labels=3), **spec)


def gpt2_medium(**spec):
    return method_counts(GPT2ForSequenceClassification, GPT2Config(**GPT2_MEDIUM), **spec)


def test_lora_roberta_large_r8():
    # Table 1 "LoRA† 0.8M": q and v, 24 layers x 2 x (8*1024 + 1024*8), no bias.
    c = roberta_large(method="lora", lora_rank=8)
    assert c.inference == 786_432
    assert c.trainable == 786_432 + 1_052_675 and c.backbone == 354_310_144


def test_lora_bert_base_r8():
    # Table 2 "LoRA† 0.3M" (UniPELT's setting): 12 layers x 2 x (8*768 + 768*8).
    c = bert_base(method="lora", lora_rank=8)
    assert c.inference == 294_912
    assert c.trainable == 294_912 + 2_307


def test_pfeiffer_roberta_large_d16():
    # Table 1 "Pfeiffer Adapter† 0.8M": one adapter after the FFN, 24 x (1024*16 + 16 + 16*1024 + 1024).
    assert roberta_large(method="pfeiffer").inference == 811_392


def test_houlsby_roberta_large():
    # Two adapters per layer. d=16 doubles Pfeiffer: 1,622,784 (1.6M), not the table's 0.8M. The LoRA paper's
    # "Houlsby Adapter† 0.8M" row (Table 1) is reproduced by bottleneck 8: 48 x (2*1024*8 + 8 + 1024) = 835,968.
    assert roberta_large(method="houlsby").inference == 2 * 811_392 == 1_622_784
    assert roberta_large(method="houlsby", adapter_dim=8).inference == 835_968


def test_houlsby_bert_base():
    # Table 2 "Houlsby Adapter† 0.9M" (UniPELT): bottleneck 24 gives 24 x (2*768*24 + 24 + 768) = 903,744.
    assert bert_base(method="houlsby", adapter_dim=24).inference == 903_744


def test_adamix_lora_gpt2_medium_r4():
    # Tables 3-5 "AdaMix LoRA 0.35M": the configuration (r=4 on q and v of c_attn, 24 layers, no bias) gives
    # 24 x (2*4*1024 + 2*1024*4) = 393,216 = 0.39M. The paper prints 0.35M, copied from the LoRA paper's GPT-2
    # rows; 0.35M does not follow from r=4 (it would need ~r=3.56). We pin the arithmetic, not the printed value.
    c = gpt2_medium(method="adamix_lora", lora_rank=4, lora_alpha=32.0, num_experts=8, share="up")
    assert c.inference == 393_216
    assert c.trainable == 1_769_472 + 3_072  # 8 A experts + 1 shared B (reference §8), plus the score head
    assert c.backbone == 354_823_168
    assert gpt2_medium(method="adamix_lora", lora_rank=4, num_experts=8, share="none").trainable == 3_145_728 + 3_072


def test_lora_gpt2_medium_r4():
    assert gpt2_medium(method="lora", lora_rank=4).inference == 393_216


def test_bitfit_bert_base():
    # Table 2 "BitFit◇ 0.1M": every backbone bias (q, k, v, attention output, intermediate, output, both
    # LayerNorms per layer; embedding LayerNorm; pooler) = 12 x 8,448 + 768 + 768 = 102,912.
    c = bert_base(method="bitfit")
    assert c.inference == 102_912
    assert c.trainable == 102_912 + 2_307 and c.backbone == 109_482_240


def test_prefix_bert_base():
    # Table 2 "Prefix-tuning† 0.2M" (UniPELT, prefix length 10): 2 (key, value) x 12 layers x 10 x 768 = 184,320
    # (0.18M, printed 0.2M; length 11 gives 202,752). The reparameterisation MLP trains but is dropped at inference.
    c = bert_base(method="prefix", prefix_length=10, prefix_hidden=512)
    assert c.inference == 184_320
    mlp = 10 * 768 + (768 * 512 + 512) + (512 * 2 * 12 * 768 + 2 * 12 * 768)
    assert c.trainable == mlp + 2_307 == 9_859_331


@pytest.mark.parametrize(
    ("build", "backbone", "head"),
    [(roberta_large, 354_310_144, 1_052_675), (bert_base, 109_482_240, 2_307), (gpt2_medium, 354_823_168, 3_072)],
)
def test_full_fine_tuning(build, backbone, head):
    # Table 1 "Fine-tuning† 355.0M" / Table 2 "110M" / Tables 3-5 "354.92M": the whole backbone. RoBERTa-large
    # counts 355,359,744 with the pooler, which RobertaForSequenceClassification does not have (354.3M here).
    c = build(method="full")
    assert c.inference == c.backbone == backbone
    assert c.trainable == backbone + head
