"""The unmerged AdaMix-LoRA as a PEFT custom LoRA layer (hf/peft_layer.py), against the pinned peft 0.21.2."""

from __future__ import annotations

import copy

import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import Qwen2Config, Qwen2ForCausalLM

from adamix_runner import AdaMixConfig, add_adamix
from adamix_runner.adaptation import LoRALayer
from adamix_runner.hf.peft_layer import (
    AdaMixLoraLinear,
    export_peft_unmerged,
    register_adamix_lora,
    router_of_peft,
    settings_from_folder,
)

IDS = torch.randint(1, 64, (2, 6), generator=torch.Generator().manual_seed(1))


def base():
    torch.manual_seed(0)
    cfg = Qwen2Config(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
                      num_key_value_heads=1)  # fmt: skip
    return Qwen2ForCausalLM(cfg).eval()


def lora_config(**kw):
    return LoraConfig(r=4, lora_alpha=32, target_modules=["q_proj", "v_proj"], **kw)


def peft_adamix(num_experts=4, share="up"):
    model = get_peft_model(base(), register_adamix_lora(lora_config(), num_experts, share))
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_" in name:
                param.add_(0.3 * torch.randn(param.shape, generator=gen))
    return model.eval()


def test_get_peft_model_builds_stacked_experts_routed_by_one_router():
    model = peft_adamix(num_experts=4)
    layers = [m for m in model.modules() if isinstance(m, AdaMixLoraLinear)]
    assert len(layers) == 4
    assert {tuple(m.lora_A["default"].weight.shape) for m in layers} == {(4, 4, 16)}
    assert {m.lora_B["default"].weight.shape[0] for m in layers} == {1}  # share="up": one B
    assert len({id(m.router) for m in layers}) == 1
    model.train()
    with router_of_peft(model).views(2):
        out = model(input_ids=torch.cat([IDS, IDS])).logits
    assert not torch.allclose(out[:2], out[2:])  # each view its own experts


def test_save_and_load_round_trip_exactly_when_registered_again(tmp_path):
    model = peft_adamix()
    expected = model(input_ids=IDS).logits
    model.save_pretrained(str(tmp_path))
    settings = settings_from_folder(tmp_path)
    assert settings == {"num_experts": 4, "share": "up", "seed": 0}
    config = register_adamix_lora(LoraConfig.from_pretrained(str(tmp_path)), **settings)
    loaded = PeftModel.from_pretrained(base(), str(tmp_path), config=config).eval()
    assert torch.equal(loaded(input_ids=IDS).logits, expected)
    saved = {k: v for k, v in model.state_dict().items() if "lora_" in k}
    again = {k: v for k, v in loaded.state_dict().items() if "lora_" in k}
    assert saved.keys() == again.keys() and all(torch.equal(saved[k], again[k]) for k in saved)


def test_loading_without_registering_fails_loudly(tmp_path):
    peft_adamix().save_pretrained(str(tmp_path))
    with pytest.raises(RuntimeError, match=r"size mismatch for .*lora_A\.default\.weight.*\[4, 4, 16\]"):
        PeftModel.from_pretrained(base(), str(tmp_path))


def test_merge_and_unload_is_the_adamix_merge():
    model = peft_adamix(num_experts=3, share="none")
    expected = model(input_ids=IDS).logits  # eval mode: the mean of the experts
    folded = model.merge_and_unload()
    assert type(folded.model.layers[0].self_attn.q_proj) is torch.nn.Linear
    assert torch.allclose(folded(input_ids=IDS).logits, expected, atol=1e-5)


def test_the_peft_layer_computes_what_the_runners_layer_computes():
    """The runner's experts copied into the PEFT layer give the same logits (eval: merged) and training views."""
    ours = add_adamix(base(), AdaMixConfig(num_experts=4, seed=0))
    peft = peft_adamix(num_experts=4)
    with torch.no_grad():
        for name, layer in ours.named_modules():
            if isinstance(layer, LoRALayer):
                target = peft.base_model.model.get_submodule(name)
                target.lora_A["default"].weight.copy_(torch.randn_like(layer.lora_A.weight))
                target.lora_B["default"].weight.copy_(torch.randn_like(layer.lora_B.weight))
                layer.lora_A.weight.copy_(target.lora_A["default"].weight)
                layer.lora_B.weight.copy_(target.lora_B["default"].weight)
    assert torch.allclose(peft(input_ids=IDS).logits, ours(input_ids=IDS).logits, atol=1e-5)
    peft.train()
    ours.train()
    with router_of_peft(peft).views(2):
        theirs = peft(input_ids=torch.cat([IDS, IDS])).logits
    from adamix_runner.api import two_view_forward

    assert torch.allclose(theirs, two_view_forward(ours, {"input_ids": IDS}).logits, atol=1e-5)


def test_unregistered_config_is_refused_by_the_layer():
    with pytest.raises(ValueError, match="register_adamix_lora"):
        AdaMixLoraLinear(torch.nn.Linear(4, 4), "default", config=lora_config(), r=2, lora_alpha=4)


def test_a_plain_lora_folder_is_not_read_as_experts(tmp_path):
    get_peft_model(copy.deepcopy(base()), lora_config()).save_pretrained(str(tmp_path))
    with pytest.raises(ValueError, match="plain LoRA"):
        settings_from_folder(tmp_path)


def test_an_add_adamix_model_exports_its_experts_into_the_peft_layer(tmp_path):
    ours = add_adamix(base(), AdaMixConfig(num_experts=4, share="none"))
    with torch.no_grad():
        for name, param in ours.named_parameters():
            if "lora_" in name:
                param.add_(0.3 * torch.randn_like(param))
    ours.train()
    from adamix_runner.api import two_view_forward

    train_views = two_view_forward(ours, {"input_ids": IDS}).logits
    expected = ours.eval()(input_ids=IDS).logits
    export_peft_unmerged(ours, tmp_path)
    settings = settings_from_folder(tmp_path)
    assert settings == {"num_experts": 4, "share": "none", "seed": 0}
    config = register_adamix_lora(LoraConfig.from_pretrained(str(tmp_path)), **settings)
    loaded = PeftModel.from_pretrained(base(), str(tmp_path), config=config).eval()
    assert torch.allclose(loaded(input_ids=IDS).logits, expected, atol=1e-6)
    loaded.train()  # a fresh router with the same seed draws what the runner's first draws were
    with router_of_peft(loaded).views(2):
        assert torch.allclose(loaded(input_ids=torch.cat([IDS, IDS])).logits, train_views, atol=1e-5)


def test_gpt2_fused_attention_is_refused_by_the_unmerged_export(tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    gpt2 = add_adamix(GPT2LMHeadModel(GPT2Config(vocab_size=64, n_embd=16, n_layer=1, n_head=2)), AdaMixConfig())
    with pytest.raises(ValueError, match=r"needs nn\.Linear targets"):
        export_peft_unmerged(gpt2, tmp_path)
