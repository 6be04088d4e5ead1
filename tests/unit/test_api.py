"""The library face (api.py) on tiny random-init models of each family preset: BERT, GPT-2, Llama, Qwen2."""

from __future__ import annotations

import copy

import pytest
import torch
from peft import PeftModel
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from adamix_runner import AdaMixConfig, add_adamix, consistency_loss, load_adamix, merge_adamix, save_adamix
from adamix_runner.adaptation import adaptation_state_dict, apply, merge
from adamix_runner.api import parameter_counts, router, two_view_forward, unmerged_state
from adamix_runner.export import export_peft_lora
from adamix_runner.training.losses import symmetric_kl

R, M, LAYERS = 4, 4, 2


def tiny(family: str):
    """A random-init backbone and a batch of token ids; hidden 16, 2 layers."""
    if family == "bert":
        cfg = BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=LAYERS, num_attention_heads=2,
                         intermediate_size=32, num_labels=3, hidden_dropout_prob=0.0,
                         attention_probs_dropout_prob=0.0)  # fmt: skip
        model = BertForSequenceClassification(cfg)
    elif family == "gpt2":
        model = GPT2LMHeadModel(GPT2Config(vocab_size=64, n_embd=16, n_layer=LAYERS, n_head=2, n_positions=32,
                                           resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0))  # fmt: skip
    else:
        kw = {"vocab_size": 64, "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": LAYERS,
              "num_attention_heads": 2, "num_key_value_heads": 1}  # fmt: skip
        model = LlamaForCausalLM(LlamaConfig(**kw)) if family == "llama" else Qwen2ForCausalLM(Qwen2Config(**kw))
    return model.eval(), torch.randint(1, 64, (2, 6), generator=torch.Generator().manual_seed(1))


def built(family: str, config: AdaMixConfig, init_seed: int = 0):
    torch.manual_seed(init_seed)
    model, ids = tiny(family)
    torch.manual_seed(init_seed + 100)
    return add_adamix(model, config), ids


def perturb(model) -> None:
    """Experts that differ from each other (fresh LoRA has B = 0 and identical A experts)."""
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for _, p in adaptation_state_dict(model).items():
            p.add_(0.2 * torch.randn(p.shape, generator=gen))


FAMILIES = ("bert", "gpt2", "llama", "qwen2")

# (in, out) of each adapted projection per layer for the "qv" preset, and the head's trainable numel.
# BERT: query and value 16 -> 16; head 16*3 + 3. GPT-2: c_attn's Q and V slices as one A [2r, 16] and grouped B
# (two [16, r] blocks). Llama/Qwen2: q_proj 16 -> 16, v_proj 16 -> 8 (one KV head of dim 8); no trainable head.
QV = {"bert": [(16, 16), (16, 16)], "llama": [(16, 16), (16, 8)], "qwen2": [(16, 16), (16, 8)]}
HEAD = {"bert": 16 * 3 + 3, "gpt2": 0, "llama": 0, "qwen2": 0}


@pytest.mark.parametrize("family", FAMILIES)
def test_parameter_counts_are_m_a_experts_and_one_shared_b(family):
    model, _ = built(family, AdaMixConfig(num_experts=M, rank=R))
    counts = parameter_counts(model)
    if family == "gpt2":
        per_layer_train, per_layer_infer = M * 2 * R * 16 + 2 * 16 * R, 2 * R * 16 + 2 * 16 * R
    else:
        per_layer_train = sum(M * R * i + R * o for i, o in QV[family])
        per_layer_infer = sum(R * i + R * o for i, o in QV[family])
    assert counts.trainable == LAYERS * per_layer_train + HEAD[family]
    assert counts.inference == LAYERS * per_layer_infer
    merge_adamix(model)
    assert parameter_counts(model).trainable == LAYERS * per_layer_infer + HEAD[family]


PRESET_ENDINGS = {
    "bert": {
        "attention": ("self.query", "self.key", "self.value", "attention.output.dense"),
        "mlp": ("intermediate.dense", f"{LAYERS - 1}.output.dense", "0.output.dense"),
    },
    "llama": {
        "attention": ("q_proj", "k_proj", "v_proj", "o_proj"),
        "mlp": ("gate_proj", "up_proj", "down_proj"),
    },
}


@pytest.mark.parametrize("family", ["bert", "llama"])
@pytest.mark.parametrize("targets", ["attention", "mlp", "all_linear"])
def test_target_presets_reach_attention_and_mlp(family, targets):
    per_layer = {"bert": {"attention": 4, "mlp": 2}, "llama": {"attention": 4, "mlp": 3}}[family]
    endings = PRESET_ENDINGS[family]
    wanted = endings["attention"] + endings["mlp"] if targets == "all_linear" else endings[targets]
    model, _ = built(family, AdaMixConfig(targets=targets))
    adapted = [n for n, m in model.named_modules() if type(m).__name__ == "LoRALayer"]
    count = sum(per_layer.values()) if targets == "all_linear" else per_layer[targets]
    assert len(adapted) == LAYERS * count
    assert all(name.endswith(wanted) for name in adapted)
    assert not any(name.endswith("attention.output.dense") for name in adapted) or targets != "mlp"


@pytest.mark.parametrize("family", FAMILIES)
def test_merge_is_the_runners_merge(family):
    """add_adamix + merge_adamix give the very weights (and logits) of adaptation.apply + adaptation.merge."""
    config = AdaMixConfig(num_experts=M)
    ours, ids = built(family, config)
    torch.manual_seed(0)
    runners, _ = tiny(family)
    torch.manual_seed(100)
    apply(runners, config.spec(), config.seed)
    perturb(ours)
    perturb(runners)
    unmerged = ours(input_ids=ids).logits  # eval mode: the mean of the experts
    merge_adamix(ours)
    merge(runners)
    theirs = adaptation_state_dict(runners)
    assert all(torch.equal(t, theirs[k]) for k, t in adaptation_state_dict(ours).items())
    assert torch.allclose(ours(input_ids=ids).logits, unmerged, atol=1e-6)


@pytest.mark.parametrize("family", FAMILIES)
def test_peft_round_trip_and_merge_and_unload_keep_the_logits(family, tmp_path):
    model, ids = built(family, AdaMixConfig(num_experts=M))
    torch.manual_seed(0)
    fresh, _ = tiny(family)
    perturb(model)
    merge_adamix(model)
    expected = model(input_ids=ids).logits
    export_peft_lora(model, model.config, tmp_path / "peft")
    loaded = PeftModel.from_pretrained(fresh, str(tmp_path / "peft")).eval()
    assert torch.allclose(loaded(input_ids=ids).logits, expected, atol=1e-5)
    folded = loaded.merge_and_unload()
    assert torch.allclose(folded(input_ids=ids).logits, expected, atol=1e-5)


@pytest.mark.parametrize("family", ["gpt2", "qwen2"])
def test_routing_is_determined_by_the_seed(family):
    """Same seed: the same experts in every training forward; another seed: other draws."""

    def train_logits(seed: int):
        model, ids = built(family, AdaMixConfig(num_experts=8, seed=seed))
        perturb(model)
        model.train()
        return torch.stack([two_view_forward(model, {"input_ids": ids}).logits for _ in range(3)])

    first, again, other = train_logits(0), train_logits(0), train_logits(5)
    assert torch.equal(first, again)
    assert not torch.allclose(first, other)
    assert not torch.allclose(first[0, :2], first[0, 2:])  # the two views were routed to different experts


def test_router_state_restores_the_draws():
    model, ids = built("llama", AdaMixConfig(num_experts=8))
    perturb(model)
    model.train()
    state = {k: v.clone() for k, v in router(model).state_dict().items()}
    first = two_view_forward(model, {"input_ids": ids}).logits
    router(model).load_state_dict(state)
    assert torch.equal(two_view_forward(model, {"input_ids": ids}).logits, first)


def test_consistency_loss_is_the_runners_symmetric_kl():
    a, b = torch.randn(3, 5, 7), torch.randn(3, 5, 7)
    mask = torch.tensor([[1, 1, 0, 0, 1]] * 3)
    assert torch.equal(consistency_loss(a, b, mask), symmetric_kl(a, b, mask))
    assert consistency_loss(a, a).item() == pytest.approx(0.0, abs=1e-6)
    assert consistency_loss(a, b).item() == pytest.approx(consistency_loss(b, a).item())


@pytest.mark.parametrize("merged", [False, True])
def test_save_and_load_keep_the_logits(merged, tmp_path):
    model, ids = built("bert", AdaMixConfig(num_experts=M))
    perturb(model)
    experts = unmerged_state(model)
    if merged:
        merge_adamix(model)
    expected = model(input_ids=ids).logits
    save_adamix(model, tmp_path / "saved", experts if merged else None)
    torch.manual_seed(0)
    fresh, _ = tiny("bert")
    load_adamix(fresh, tmp_path / "saved")
    assert torch.equal(fresh(input_ids=ids).logits, expected)
    assert parameter_counts(fresh).trainable == parameter_counts(model).trainable
    if merged:  # the unmerged experts of a merged save come back too
        torch.manual_seed(0)
        again, _ = tiny("bert")
        load_adamix(again, tmp_path / "saved", experts=True)
        assert all(torch.equal(t, experts[k]) for k, t in adaptation_state_dict(again).items())


def test_load_refuses_a_folder_without_experts(tmp_path):
    model, _ = built("bert", AdaMixConfig(num_experts=M))
    save_adamix(model, tmp_path / "saved")
    torch.manual_seed(0)
    with pytest.raises(ValueError, match="keeps no unmerged experts"):
        load_adamix(tiny("bert")[0], tmp_path / "saved", experts=True)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "prefix"}, "kind must be one of"),
        ({"targets": "ffn"}, "targets for kind='lora' must be one of"),
        ({"kind": "adapter", "targets": "qv"}, "targets for kind='adapter'"),
        ({"num_experts": 0}, "num_experts must be >= 1"),
        ({"share": "both"}, "share must be one of"),
        ({"consistency_weight": -1.0}, "consistency_weight must be >= 0"),
    ],
)
def test_bad_configs_say_what_is_allowed(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AdaMixConfig(**kwargs)


def test_adapter_kind_goes_after_the_ffn_and_merges():
    model, ids = built("qwen2", AdaMixConfig(kind="adapter", adapter_dim=4, num_experts=M))
    names = [n for n, m in model.named_modules() if type(m).__name__ == "AdaptedModule"]
    assert names == [f"model.layers.{i}.mlp.down_proj" for i in range(LAYERS)]
    perturb(model)
    expected = model(input_ids=ids).logits
    assert torch.allclose(merge_adamix(model)(input_ids=ids).logits, expected, atol=1e-6)


def test_a_model_without_adamix_is_named():
    from adamix_runner.api import config_of

    with pytest.raises(ValueError, match="call add_adamix"):
        config_of(copy.deepcopy(tiny("bert")[0]))


@pytest.mark.parametrize("model_type", ["mistral", "gemma", "gemma2", "qwen3"])
def test_other_llama_style_families_take_the_llama_presets(model_type):
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.for_model(model_type, vocab_size=64, hidden_size=16, intermediate_size=32, head_dim=8,
                                  num_hidden_layers=LAYERS, num_attention_heads=2, num_key_value_heads=1)  # fmt: skip
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    add_adamix(model, AdaMixConfig(targets="all_linear"))
    adapted = [n for n, m in model.named_modules() if type(m).__name__ == "LoRALayer"]
    assert len(adapted) == LAYERS * 7  # q, k, v, o, gate, up, down
