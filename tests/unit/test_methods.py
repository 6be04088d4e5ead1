"""The baseline methods and AdaMix-LoRA on tiny random BERT, RoBERTa and GPT-2 (CPU, no download).

What each method wraps, what trains, the LoRA / AdaMix-LoRA / prefix arithmetic against hand-written references,
routing and merging of LoRA experts, and state-dict round trips for every method.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from transformers import BertConfig, BertForSequenceClassification

from adamix_runner.adaptation import (
    AdaptationSpec,
    AdaptedModule,
    Router,
    adaptation_state_dict,
    apply,
    count_parameters,
    head_state_dict,
    load_adaptation_state_dict,
    load_head_state_dict,
    merge,
    router_of,
    trainable_parameters,
)
from adamix_runner.adaptation.lora import LoRALayer
from adamix_runner.adaptation.prefix import PrefixEncoder, PrefixSelfAttention

from .test_adaptation import HIDDEN, IDS, bert, gpt2, logits, roberta

BUILDERS = {"bert": bert, "roberta": roberta, "gpt2": gpt2}
ALL_METHODS = ("adamix", "adapter", "pfeiffer", "houlsby", "lora", "adamix_lora", "bitfit", "full", "prefix")


def adapted(model, seed=0, init_seed=1, **spec):
    torch.manual_seed(init_seed)
    apply(model, AdaptationSpec(**{"adapter_dim": 4, **spec}), seed)
    return model


def perturb(model, scale=0.1, seed=3):
    """Move every trainable tensor off its init (LoRA B starts at zero, which would hide errors)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, p in trainable_parameters(model):
            p.add_(scale * torch.randn(p.shape, generator=gen))
    return model


def wrapped(model, kind):
    return [n for n, m in model.named_modules() if isinstance(m, kind)]


def lora_layers(model):
    return [m for m in model.modules() if isinstance(m, LoRALayer)]


# --- spec ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        {"method": "lora", "num_experts": 2},
        {"method": "houlsby", "num_experts": 2},
        {"method": "prefix", "num_experts": 2},
        {"method": "lora", "lora_rank": 0},
        {"method": "lora", "lora_alpha": 0.0},
        {"method": "lora", "lora_dropout": 1.0},
        {"method": "prefix", "prefix_length": 0},
        {"method": "unipelt", "components": []},
    ],
)
def test_spec_rejects_bad_method_fields(bad):
    with pytest.raises(ValueError):
        AdaptationSpec(**{"adapter_dim": 4, **bad})


def test_adamix_lora_takes_experts_and_scaling():
    spec = AdaptationSpec("adamix_lora", 4, num_experts=8, lora_rank=4, lora_alpha=32.0)
    assert spec.lora_scaling == 8.0


# --- placement -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["bert", "roberta"])
def test_houlsby_wraps_attention_output_and_ffn_output(arch):
    model = adapted(BUILDERS[arch](), method="houlsby")
    names = wrapped(model, AdaptedModule)
    assert len(names) == 2 * model.config.num_hidden_layers
    assert sorted(n.split("layer.")[1] for n in names) == [
        "0.attention.output.dense", "0.output.dense", "1.attention.output.dense", "1.output.dense",
    ]  # fmt: skip
    assert logits(model).shape == (3, 3)


def test_houlsby_on_gpt2_wraps_both_c_proj():
    model = adapted(gpt2(), method="houlsby")
    assert wrapped(model, AdaptedModule) == [
        "transformer.h.0.attn.c_proj", "transformer.h.0.mlp.c_proj",
        "transformer.h.1.attn.c_proj", "transformer.h.1.mlp.c_proj",
    ]  # fmt: skip


@pytest.mark.parametrize("arch", ["bert", "gpt2"])
def test_pfeiffer_is_the_plain_adapter(arch):
    a = adapted(BUILDERS[arch](), method="pfeiffer")
    b = adapted(BUILDERS[arch](), method="adapter")
    assert wrapped(a, AdaptedModule) == wrapped(b, AdaptedModule)
    torch.testing.assert_close(logits(a), logits(b), rtol=0, atol=0)


@pytest.mark.parametrize(
    ("arch", "expected"),
    [
        ("bert", ["bert.encoder.layer.0.attention.self.query", "bert.encoder.layer.0.attention.self.value"]),
        ("roberta", ["roberta.encoder.layer.0.attention.self.query", "roberta.encoder.layer.0.attention.self.value"]),
        ("gpt2", ["transformer.h.0.attn.c_attn"]),
    ],
)
def test_lora_targets_query_and_value(arch, expected):
    model = adapted(BUILDERS[arch](), method="lora", lora_rank=2)
    names = wrapped(model, LoRALayer)
    assert names[: len(expected)] == expected and len(names) == 2 * len(expected)


# --- what trains ---------------------------------------------------------------------------------------


COMBOS = [
    (a, m) for a in BUILDERS for m in ALL_METHODS if (a, m) != ("gpt2", "prefix")
]  # see test_prefix_refuses_gpt2


@pytest.mark.parametrize(("arch", "method"), COMBOS)
def test_trainable_set_and_gradients(arch, method):
    extra = {"num_experts": 2} if method in ("adamix", "adamix_lora") else {}
    model = perturb(adapted(BUILDERS[arch](), method=method, lora_rank=2, prefix_length=3, prefix_hidden=8, **extra))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {n for n, _ in trainable_parameters(model)}
    assert trainable == set(adaptation_state_dict(model)) | {n for n in head_state_dict(model)}
    head = {n for n in head_state_dict(model)}
    assert head and head <= trainable
    model.train()
    logits(model).sum().backward()
    for name, p in model.named_parameters():
        assert (p.grad is not None) == p.requires_grad, name
    counts = count_parameters(model)
    total = sum(p.numel() for p in model.parameters())
    assert counts.trainable == sum(p.numel() for n, p in model.named_parameters() if n in trainable)
    if method == "full":
        assert trainable == {n for n, _ in model.named_parameters()}
        assert counts.inference == counts.backbone == total - counts.head
    if method == "bitfit":
        assert all(n.endswith(".bias") for n in trainable - head)
        assert any("LayerNorm" in n or ".ln_" in n for n in trainable)
        assert counts.backbone == total - counts.head


# --- LoRA arithmetic -----------------------------------------------------------------------------------


def test_lora_init_is_identity_and_loralib_like():
    base = bert()
    model = adapted(bert(), method="lora", lora_rank=4)
    torch.testing.assert_close(logits(model), logits(base), rtol=0, atol=0)  # B = 0
    layer = lora_layers(model)[0]
    a = layer.lora_A.weight[0]
    assert a.shape == (4, HIDDEN) and layer.lora_B.weight.abs().sum() == 0
    bound = 1 / math.sqrt(HIDDEN)  # kaiming_uniform(a=sqrt(5)) on fan_in = in
    assert a.abs().max() <= bound and a.abs().max() > 0.5 * bound
    assert layer.lora_A.bias is None and layer.lora_B.bias is None


def test_lora_linear_matches_reference():
    model = perturb(adapted(bert(), method="lora", lora_rank=2, lora_alpha=6.0))
    layer = model.bert.encoder.layer[0].attention.self.query
    x = torch.randn(2, 5, HIDDEN)
    a, b = layer.lora_A.weight[0], layer.lora_B.weight[0]
    torch.testing.assert_close(layer(x), layer.base(x) + 3.0 * x @ a.T @ b.T)


def test_gpt2_lora_adapts_only_q_and_v_slices():
    model = perturb(adapted(gpt2(), method="lora", lora_rank=2, lora_alpha=4.0))
    layer = model.transformer.h[0].attn.c_attn
    assert layer.lora_A.weight.shape == (1, 4, HIDDEN) and layer.lora_B.weight.shape == (1, 2 * HIDDEN, 2)
    x = torch.randn(2, 5, HIDDEN)
    out, ref = layer(x), layer.base(x)
    a, b = layer.lora_A.weight[0], layer.lora_B.weight[0]
    d = HIDDEN
    # loralib MergedLinear(enable_lora=[True, False, True]): grouped B, Q reads A rows :r, V reads r:
    torch.testing.assert_close(out[..., :d], ref[..., :d] + 2.0 * x @ a[:2].T @ b[:d].T)
    torch.testing.assert_close(out[..., d : 2 * d], ref[..., d : 2 * d], rtol=0, atol=0)
    torch.testing.assert_close(out[..., 2 * d :], ref[..., 2 * d :] + 2.0 * x @ a[2:].T @ b[d:].T)
    delta = layer.merged_weight_delta()
    torch.testing.assert_close(ref + x @ delta.T, out)


# --- AdaMix-LoRA ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("share", "na", "nb"), [("up", 4, 1), ("down", 1, 4), ("none", 4, 4)])
def test_adamix_lora_share_maps_up_to_b(share, na, nb):
    model = adapted(gpt2(), method="adamix_lora", num_experts=4, share=share, lora_rank=2)
    for layer in lora_layers(model):
        assert (layer.lora_A.num_experts, layer.lora_B.num_experts) == (na, nb)
        assert torch.equal(layer.lora_A.weight, layer.lora_A.weight[:1].expand_as(layer.lora_A.weight))
        assert layer.lora_B.weight.abs().sum() == 0


def test_adamix_lora_routes_a_and_b_independently_per_view():
    torch.manual_seed(0)
    router = Router(0)
    base = torch.nn.Linear(8, 6)
    layer = LoRALayer(base, 2, 4.0, 0.0, 4, 4, router).train()
    with torch.no_grad():
        layer.lora_A.weight.normal_()
        layer.lora_B.weight.normal_()
    x = torch.randn(3, 8)
    probe = torch.Generator()  # predict the draws: A first (one per view), then B, from the same generator
    probe.set_state(router.generator.get_state())
    a0, a1 = torch.randint(4, (2,), generator=probe).tolist()
    b0, b1 = torch.randint(4, (2,), generator=probe).tolist()
    with router.views(2):
        out = layer(torch.cat([x, x]))
    a, b = layer.lora_A.weight, layer.lora_B.weight
    with torch.no_grad():
        torch.testing.assert_close(out[:3], base(x) + 2.0 * x @ a[a0].T @ b[b0].T)
        torch.testing.assert_close(out[3:], base(x) + 2.0 * x @ a[a1].T @ b[b1].T)
    assert torch.equal(router.generator.get_state(), probe.get_state())


def test_adamix_lora_merge_is_mean_a_times_mean_b():
    model = perturb(adapted(bert(), method="adamix_lora", num_experts=4, share="none", lora_rank=2, lora_alpha=2.0))
    layer = model.bert.encoder.layer[1].attention.self.value
    a, b = layer.lora_A.weight.clone(), layer.lora_B.weight.clone()
    x = torch.randn(2, 5, HIDDEN)
    with torch.no_grad():
        evaluated = layer(x)
        before = logits(model)
    expected = layer.base(x) + x @ a.mean(0).T @ b.mean(0).T
    torch.testing.assert_close(evaluated, expected)
    mean_of_deltas = torch.stack([x @ a[j].T @ b[j].T for j in range(4)]).mean(0)
    assert not torch.allclose(evaluated, layer.base(x) + mean_of_deltas, atol=1e-6, rtol=0)
    state = router_of(model).generator.get_state()
    merge(model)
    assert (layer.lora_A.num_experts, layer.lora_B.num_experts) == (1, 1)
    with torch.no_grad():
        torch.testing.assert_close(logits(model), before)
        model.train()
        trained = logits(model)
    assert torch.equal(router_of(model).generator.get_state(), state)
    torch.testing.assert_close(trained, before)


def test_adamix_lora_random_routing_per_sequence_on_grouped_c_attn():
    model = perturb(
        adapted(gpt2(), seed=5, method="adamix_lora", num_experts=3, share="none", inference="random", lora_rank=2)
    )
    layer = model.transformer.h[0].attn.c_attn
    x = torch.randn(4, 5, HIDDEN)
    probe = torch.Generator().manual_seed(6)  # eval generator = seed + 1; A draws per row first, then B
    a_idx, b_idx = torch.randint(3, (4,), generator=probe), torch.randint(3, (4,), generator=probe)
    with torch.no_grad():
        out = layer(x)
        for row in range(4):
            a, b = layer.lora_A.weight[a_idx[row]], layer.lora_B.weight[b_idx[row]]
            h = x[row] @ a.T * layer.scaling
            d = HIDDEN
            ref = layer.base(x[row])
            torch.testing.assert_close(out[row, :, :d], ref[:, :d] + h[:, :2] @ b[:d].T)
            torch.testing.assert_close(out[row, :, 2 * d :], ref[:, 2 * d :] + h[:, 2:] @ b[d:].T)


@pytest.mark.parametrize(("share", "equals_merge"), [("up", True), ("none", False)])
def test_adamix_lora_ensemble(share, equals_merge):
    """Ensemble = mean of the expert pairs' deltas; with B shared it equals the merge (linear in A)."""
    model = perturb(adapted(bert(), method="adamix_lora", num_experts=3, share=share, inference="ensemble"))
    layer = model.bert.encoder.layer[0].attention.self.query
    x = torch.randn(2, 4, HIDDEN)
    a, b, s = layer.lora_A.weight, layer.lora_B.weight, layer.scaling
    with torch.no_grad():
        out = layer(x)
        base = layer.base(x)
        pairs = torch.stack([x @ a[j].T @ b[j % b.shape[0]].T for j in range(3)]).mean(0)
        merged = base + s * x @ a.mean(0).T @ b.mean(0).T
    torch.testing.assert_close(out, base + s * pairs)
    assert torch.allclose(out, merged, atol=1e-6, rtol=0) == equals_merge


# --- prefix-tuning -------------------------------------------------------------------------------------


def reference_prefix_attention(attn, encoder, layer, h, mask):
    """Multi-head attention over [prefix; sequence] keys, written out from the formula."""
    heads, dh = attn.num_attention_heads, attn.attention_head_size
    pk, pv = encoder.layer_prefix(layer)

    def split(t):
        return t.view(t.shape[0], -1, heads, dh).transpose(1, 2)

    q = split(attn.query(h))
    k = torch.cat([split(pk.unsqueeze(0)).expand(h.shape[0], -1, -1, -1), split(attn.key(h))], 2)
    v = torch.cat([split(pv.unsqueeze(0)).expand(h.shape[0], -1, -1, -1), split(attn.value(h))], 2)
    visible = torch.cat([torch.ones(h.shape[0], encoder.prefix_length, dtype=torch.bool), mask.bool()], 1)
    scores = q @ k.transpose(2, 3) / math.sqrt(dh)
    scores = scores.masked_fill(~visible[:, None, None, :], float("-inf"))
    return (scores.softmax(-1) @ v).transpose(1, 2).reshape(h.shape[0], h.shape[1], -1)


@pytest.mark.parametrize("impl", ["eager", "sdpa"])
def test_prefix_attention_matches_reference(impl):
    model = adapted(bert(attn_implementation=impl), method="prefix", prefix_length=3, prefix_hidden=8)
    attn = model.bert.encoder.layer[1].attention.self
    assert isinstance(attn, PrefixSelfAttention)
    captured = {}
    attn.register_forward_hook(lambda m, args, kwargs, out: captured.update(h=args[0], out=out[0]), with_kwargs=True)
    mask = torch.tensor([[1, 1, 1, 1, 0, 0, 0], [1] * 7, [1, 1, 0, 0, 0, 0, 0]])
    with torch.no_grad():
        model(input_ids=IDS, attention_mask=mask)
        expected = reference_prefix_attention(attn.base, attn.encoder, 1, captured["h"], mask)
    for row, length in enumerate((4, 7, 2)):
        torch.testing.assert_close(captured["out"][row, :length], expected[row, :length], atol=1e-5, rtol=1e-5)


def test_prefix_padding_does_not_leak():
    model = adapted(bert(), method="prefix", prefix_length=3, prefix_hidden=8)
    ids = IDS[:1]
    padded = torch.cat([ids, torch.zeros(1, 3, dtype=ids.dtype)], 1)
    mask = torch.cat([torch.ones_like(ids), torch.zeros(1, 3, dtype=ids.dtype)], 1)
    with torch.no_grad():
        alone = model(input_ids=ids).logits
        with_pad = model(input_ids=padded, attention_mask=mask).logits
    torch.testing.assert_close(alone, with_pad, atol=1e-5, rtol=1e-5)


def test_eval_prefixes_follow_a_load_of_new_prefix_weights():
    """After an eval forward, loading other prefix weights (the head untouched, so only the prefix can move the
    logits) gives exactly the logits of a model built with those weights: no prefix outlives its weights."""
    model = adapted(bert(), method="prefix", prefix_length=3, prefix_hidden=8)
    other = perturb(adapted(bert(), method="prefix", prefix_length=3, prefix_hidden=8), scale=1.0, seed=5)
    load_head_state_dict(other, head_state_dict(model))
    with torch.no_grad():
        before = model(input_ids=IDS).logits
        load_adaptation_state_dict(model, adaptation_state_dict(other))
        after, expected = model(input_ids=IDS).logits, other(input_ids=IDS).logits
    torch.testing.assert_close(after, expected)
    assert not torch.allclose(after, before, atol=1e-4)


def test_prefix_mlp_runs_once_per_forward_and_every_layer_gets_gradients():
    model = adapted(bert(), method="prefix", prefix_length=3, prefix_hidden=8)
    encoder = next(m for m in model.modules() if isinstance(m, PrefixEncoder))
    calls = []
    encoder.mlp.register_forward_hook(lambda *args: calls.append(1))
    model(input_ids=IDS).logits.sum().backward()
    model(input_ids=IDS).logits.sum()
    assert len(calls) == 2
    grad = encoder.mlp[2].weight.grad.view(encoder.num_layers, 2, encoder.hidden, -1)
    assert all(grad[layer].abs().sum() > 0 for layer in range(encoder.num_layers))


def test_prefix_encoder_is_registered_once():
    model = adapted(bert(), method="prefix", prefix_length=3, prefix_hidden=8)
    keys = list(adaptation_state_dict(model))
    assert keys == [
        "bert.encoder.prefix_encoder.embedding.weight",
        "bert.encoder.prefix_encoder.mlp.0.weight", "bert.encoder.prefix_encoder.mlp.0.bias",
        "bert.encoder.prefix_encoder.mlp.2.weight", "bert.encoder.prefix_encoder.mlp.2.bias",
    ]  # fmt: skip
    c = count_parameters(model)
    assert c.inference == 2 * 2 * 3 * HIDDEN  # 2 (key, value) x L x P x d; the MLP is not counted


def test_prefix_refuses_gpt2():
    with pytest.raises(ValueError, match=r"BERT/RoBERTa self-attention only, not model_type 'gpt2'"):
        adapted(gpt2(), method="prefix")


# --- state dicts ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("arch", "method"), [c for c in COMBOS if c[0] != "roberta"])
def test_state_round_trip_every_method(arch, method):
    extra = {"num_experts": 2} if method in ("adamix", "adamix_lora") else {}
    spec = {"method": method, "lora_rank": 2, "prefix_length": 3, "prefix_hidden": 8, **extra}
    source = perturb(adapted(BUILDERS[arch](), init_seed=1, **spec))
    target = adapted(BUILDERS[arch](), init_seed=2, **spec)
    assert not torch.allclose(logits(source), logits(target))
    load_adaptation_state_dict(target, adaptation_state_dict(source))
    load_head_state_dict(target, head_state_dict(source))
    torch.testing.assert_close(logits(source), logits(target), rtol=0, atol=0)


def test_full_state_is_the_whole_backbone():
    model = adapted(bert(), method="full")
    assert set(adaptation_state_dict(model)) | set(head_state_dict(model)) == set(dict(model.named_parameters()))


def test_bitfit_bias_only_training_step_moves_only_biases():
    model = adapted(BertForSequenceClassification(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1,
                    num_attention_heads=2, intermediate_size=8, num_labels=2)), method="bitfit")  # fmt: skip
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.SGD([p for _, p in trainable_parameters(model)], lr=0.1)
    model.train()
    F.cross_entropy(model(input_ids=IDS % 50).logits, torch.tensor([0, 1, 0])).backward()
    opt.step()
    moved = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert moved and all(n.endswith("bias") or n.startswith("classifier.") for n in moved)
    assert "bert.embeddings.word_embeddings.weight" not in moved


# --- fidelity options (issue 12) ----------------------------------------------------------------------------


def test_adapter_activation_is_the_official_one_per_task_kind():
    from adamix_runner.config.checks import adaptation_spec
    from tests.conftest import compose_config

    assert adaptation_spec(compose_config("task=mrpc", "model=tiny-bert")).adapter_activation == "gelu"
    nlg = compose_config("task=e2e", "model=tiny-gpt2", "peft=adamix")
    assert adaptation_spec(nlg).adapter_activation == "gelu_tanh"
    chosen = compose_config("task=e2e", "model=tiny-gpt2", "peft=adamix", "peft.adapter_activation=gelu")
    assert adaptation_spec(chosen).adapter_activation == "gelu"


@pytest.mark.parametrize("activation", ["gelu", "gelu_tanh", "relu"])
def test_adapter_computes_its_activation(activation):
    model = perturb(adapted(gpt2(), method="adapter", share="none", adapter_activation=activation))
    adapter = next(m for m in model.modules() if isinstance(m, AdaptedModule)).adapter
    h = torch.randn(2, 5, HIDDEN)
    z = h @ adapter.down.weight[0].T + adapter.down.bias[0]
    act = {
        "gelu": 0.5 * z * (1 + torch.erf(z / math.sqrt(2))),
        "gelu_tanh": 0.5 * z * (1 + torch.tanh(math.sqrt(2 / math.pi) * (z + 0.044715 * z**3))),  # NLG expert_soup
        "relu": z.clamp(min=0),
    }[activation]
    with torch.no_grad():
        torch.testing.assert_close(adapter(h), h + act @ adapter.up.weight[0].T + adapter.up.bias[0])


@pytest.mark.parametrize("build", ["gpt2", "bert"])
@pytest.mark.parametrize("shared", [True, False])
def test_lora_shared_init_starts_every_layer_from_the_same_a(build, shared):
    model = adapted(BUILDERS[build](), method="adamix_lora", num_experts=2, lora_shared_init=shared)
    firsts = [layer.lora_A.weight for layer in lora_layers(model)]
    assert len(firsts) >= 2
    assert all(torch.equal(a, firsts[0]) for a in firsts) == shared
    assert all(torch.equal(a[0], a[1]) for a in firsts)  # the experts of a layer start equal either way
