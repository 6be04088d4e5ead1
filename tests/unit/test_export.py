"""Exports: a PEFT LoRA folder that peft loads back to the same logits, and LoRA folded into a plain model."""

from __future__ import annotations

import json

import pytest
import torch
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification

from adamix_runner.adaptation import merge
from adamix_runner.adaptation.lora import LoRALayer
from adamix_runner.export import export_folded, export_peft_lora, fold_lora

from .test_adaptation import HIDDEN, IDS, bert, gpt2, roberta
from .test_methods import adapted, perturb

BUILDERS = {"bert": bert, "roberta": roberta, "gpt2": gpt2}
MASK = torch.tensor([[1] * 7, [1, 1, 1, 1, 0, 0, 0], [1] * 7])


def run(model):
    with torch.no_grad():
        return model(input_ids=IDS, attention_mask=MASK).logits


def trained(arch, method, **spec):
    """A tiny adapted model whose LoRA factors and head moved away from init (B = 0 would hide errors)."""
    extra = {"num_experts": 3, "share": "none"} if method == "adamix_lora" else {}
    return perturb(adapted(BUILDERS[arch](), method=method, lora_rank=2, lora_alpha=6.0, **extra, **spec), 0.3)


@pytest.mark.parametrize("arch", ["bert", "roberta", "gpt2"])
@pytest.mark.parametrize("method", ["lora", "adamix_lora"])
def test_peft_round_trip_gives_equal_logits(arch, method, tmp_path):
    model = trained(arch, method)
    merge(model)
    ours = run(model)
    assert (ours - run(BUILDERS[arch]())).abs().max() > 1e-2  # the adaptation and head really change logits
    export_peft_lora(model, model.config, tmp_path)
    loaded = PeftModel.from_pretrained(BUILDERS[arch](), tmp_path).eval()
    assert (run(loaded) - ours).abs().max() < 1e-5
    config = json.loads((tmp_path / "adapter_config.json").read_text())
    state = load_file(str(tmp_path / "adapter_model.safetensors"))
    head = "score" if arch == "gpt2" else "classifier"
    assert head in config["modules_to_save"] and config["task_type"] == "SEQ_CLS"
    assert any(k.startswith(f"base_model.model.{head}.") for k in state)  # PEFT drops ".modules_to_save.default"
    assert config["lora_alpha"] / config["r"] == 3.0  # the same scaling alpha / r
    assert config["fan_in_fan_out"] == (arch == "gpt2")


def test_gpt2_export_is_rank_2r_with_zero_k_rows(tmp_path):
    model = trained("gpt2", "lora")
    export_peft_lora(model, "gpt2-medium", tmp_path)
    config = json.loads((tmp_path / "adapter_config.json").read_text())
    assert (config["r"], config["lora_alpha"], config["base_model_name_or_path"]) == (4, 12.0, "gpt2-medium")
    state = load_file(str(tmp_path / "adapter_model.safetensors"))
    layer = model.transformer.h[0].attn.c_attn
    a = state["base_model.model.transformer.h.0.attn.c_attn.lora_A.weight"]
    b = state["base_model.model.transformer.h.0.attn.c_attn.lora_B.weight"]
    d = HIDDEN
    assert a.shape == (4, d) and b.shape == (3 * d, 4)
    torch.testing.assert_close(a, layer.lora_A.weight[0], rtol=0, atol=0)
    assert b[d : 2 * d].abs().sum() == 0  # K rows
    assert b[:d, 2:].abs().sum() == 0 and b[2 * d :, :2].abs().sum() == 0  # Q reads A_q only, V reads A_v only
    torch.testing.assert_close(b[:d, :2], layer.lora_B.weight[0, :d], rtol=0, atol=0)


def test_unmerged_mixture_exports_its_merge(tmp_path):
    model = trained("bert", "adamix_lora")
    export_peft_lora(model, None, tmp_path / "unmerged")
    merge(model)
    export_peft_lora(model, None, tmp_path / "merged")
    a, b = (load_file(str(tmp_path / f / "adapter_model.safetensors")) for f in ("unmerged", "merged"))
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key])


@pytest.mark.parametrize("arch", ["bert", "gpt2"])
def test_folded_model_saves_and_reloads_with_equal_logits(arch, tmp_path):
    model = trained(arch, "adamix_lora")
    ours = run(model)
    folder = export_folded(model, tmp_path)
    assert any(isinstance(m, LoRALayer) for m in model.modules())  # the source model is left as it was
    reloaded = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    assert not any(isinstance(m, LoRALayer) for m in reloaded.modules())
    assert set(reloaded.state_dict()) == set(BUILDERS[arch]().state_dict())
    assert (run(reloaded) - ours).abs().max() < 1e-5


@pytest.mark.parametrize("method", ["full", "bitfit"])
def test_in_place_methods_fold_trivially(method):
    model = perturb(adapted(bert(), method=method))
    plain = fold_lora(model)
    torch.testing.assert_close(run(plain), run(model), rtol=0, atol=0)
    assert not hasattr(plain, "adamix_router")


@pytest.mark.parametrize("method", ["adamix", "houlsby", "prefix"])
def test_non_lora_methods_are_refused(method, tmp_path):
    model = adapted(bert(), method=method, prefix_length=2, prefix_hidden=4)
    with pytest.raises(ValueError, match="LoRA"):
        export_peft_lora(model, None, tmp_path)
    with pytest.raises(ValueError, match="only LoRA folds"):
        fold_lora(model)
