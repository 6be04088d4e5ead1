"""model.train_pooler: the BERT pooler the classification head reads trains with the head, for every method alike;
off (the default, official), it stays frozen and belongs to the backbone."""

from __future__ import annotations

import pytest
import torch
from peft import PeftModel
from transformers import BertConfig, BertForSequenceClassification

from adamix_runner.adaptation import (
    AdaptationSpec,
    apply,
    count_parameters,
    head_state_dict,
    merge,
    trainable_parameters,
)
from adamix_runner.config.checks import adaptation_spec, validate
from adamix_runner.config.compose import compose_config
from adamix_runner.errors import UserError
from adamix_runner.export import export_peft_lora

from .test_export import BUILDERS, run, trained

HIDDEN, LABELS = 32, 2
POOLER = HIDDEN * HIDDEN + HIDDEN  # bert.pooler.dense weight and bias
HEAD = HIDDEN * LABELS + LABELS  # classifier


def _model(method: str, train_pooler: bool):
    cfg = BertConfig(
        vocab_size=100, hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
        num_labels=LABELS,
    )  # fmt: skip
    torch.manual_seed(0)
    model = BertForSequenceClassification(cfg)
    num_experts = 4 if method == "adamix" else 1
    apply(model, AdaptationSpec(method, adapter_dim=4, num_experts=num_experts, train_pooler=train_pooler), seed=0)
    return model


@pytest.mark.parametrize("method", ["adamix", "adapter", "lora", "bitfit", "prefix", "full"])
def test_pooler_trains_and_counts_as_head_only_when_on(method):
    off, on = _model(method, False), _model(method, True)
    pooler_names = {"bert.pooler.dense.weight", "bert.pooler.dense.bias"}
    trained_on = {name for name, _ in trainable_parameters(on)}
    assert pooler_names <= trained_on
    assert all(p.requires_grad for p in on.bert.pooler.parameters())
    # off, the pooler is backbone: full fine-tuning trains it all, BitFit its bias, the other methods none of it
    trained_off = {"full": pooler_names, "bitfit": {"bert.pooler.dense.bias"}}.get(method, set())
    assert pooler_names & {name for name, _ in trainable_parameters(off)} == trained_off
    assert {n for n, p in off.named_parameters() if p.requires_grad and n in pooler_names} == trained_off
    c_off, c_on = count_parameters(off), count_parameters(on)
    assert (c_off.head, c_on.head) == (HEAD, HEAD + POOLER)
    assert c_on.backbone == c_off.backbone - POOLER
    assert c_on.inference == c_off.inference - (POOLER if method == "full" else 32 if method == "bitfit" else 0)
    assert c_on.trainable == c_off.trainable + (
        0 if method == "full" else POOLER - 32 if method == "bitfit" else POOLER
    )
    assert pooler_names <= set(head_state_dict(on)) and not pooler_names & set(head_state_dict(off))


def test_pooler_gets_gradient_only_when_on():
    ids = torch.randint(2, 100, (3, 7), generator=torch.Generator().manual_seed(0))
    for flag in (False, True):
        model = _model("adapter", flag)
        model(input_ids=ids, labels=torch.tensor([0, 1, 0])).loss.backward()
        assert (model.bert.pooler.dense.weight.grad is not None) is flag


def test_config_key_reaches_the_spec_minilm_on_paper_backbones_off():
    assert adaptation_spec(compose_config("model=minilm")).train_pooler is True
    for model in ("bert-base", "roberta-large", "tiny-bert"):
        assert adaptation_spec(compose_config(f"model={model}")).train_pooler is False
    assert adaptation_spec(compose_config("model=minilm", "model.train_pooler=false")).train_pooler is False


def test_train_pooler_on_a_model_without_one_is_a_user_error():
    cfg = compose_config("model=roberta-large", "model.pretrained=false", "model.train_pooler=true")
    with pytest.raises(UserError, match=r"model\.train_pooler=true .* roberta without one"):
        validate(cfg)


def test_peft_export_carries_the_trained_pooler(tmp_path):
    """The pooler is a module PEFT saves (modules_to_save), so the exported adapter gives the same logits."""
    model = trained("bert", "lora", train_pooler=True)
    merge(model)
    export_peft_lora(model, model.config, tmp_path)
    loaded = PeftModel.from_pretrained(BUILDERS["bert"](), tmp_path).eval()
    assert (run(loaded) - run(model)).abs().max() < 1e-5
