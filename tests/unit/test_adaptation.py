"""AdaMix adaptation math, routing, freezing and state dicts on tiny random models (CPU, no download)."""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    GPT2Config,
    GPT2ForSequenceClassification,
    RobertaConfig,
    RobertaForSequenceClassification,
)

from adamix_runner.adaptation import (
    AdaptationSpec,
    AdaptedModule,
    BottleneckAdapter,
    ExpertLinear,
    Router,
    adaptation_state_dict,
    apply,
    head_state_dict,
    load_adaptation_state_dict,
    load_head_state_dict,
    merge,
    router_of,
    trainable_parameters,
)

HIDDEN = 32
NO_DROPOUT = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}


def bert(**overrides):
    kw = dict(vocab_size=100, hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=2)
    kw.update(intermediate_size=37, num_labels=3, **NO_DROPOUT)
    torch.manual_seed(0)
    return BertForSequenceClassification(BertConfig(**{**kw, **overrides})).eval()


def roberta():
    cfg = RobertaConfig(
        vocab_size=100, hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
        num_labels=3, max_position_embeddings=64, type_vocab_size=1, pad_token_id=1, **NO_DROPOUT,
    )  # fmt: skip
    torch.manual_seed(0)
    return RobertaForSequenceClassification(cfg).eval()


def gpt2():
    cfg = GPT2Config(vocab_size=100, n_embd=HIDDEN, n_layer=2, n_head=2, n_positions=64, num_labels=3)
    cfg.pad_token_id = 0
    torch.manual_seed(0)
    return GPT2ForSequenceClassification(cfg).eval()


def adapted(model, seed=0, init_seed=1, **spec):
    spec = {"method": "adamix", "adapter_dim": 4, **spec}
    torch.manual_seed(init_seed)
    apply(model, AdaptationSpec(**spec), seed)
    return model


def adapters(model) -> list[BottleneckAdapter]:
    return [m for m in model.modules() if isinstance(m, BottleneckAdapter)]


IDS = torch.randint(2, 100, (3, 7), generator=torch.Generator().manual_seed(0))


def logits(model):
    return model(input_ids=IDS).logits


def ref_adapter(h, wd, bd, wu, bu):
    return h + F.linear(F.gelu(F.linear(h, wd, bd)), wu, bu)


def tiny_adapter(inference="merge", share="none", m=3, seed=0):
    torch.manual_seed(1)
    return BottleneckAdapter(8, 4, m, share, Router(seed, inference, fixed_expert=2)).eval()


# --- spec and structure ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        {"adapter_dim": 0},
        {"num_experts": 0},
        {"share": "both"},
        {"inference": "soup"},
        {"num_experts": 4, "fixed_expert": 4},
        {"method": "adapter", "num_experts": 2},
        {"method": "lora"},
    ],
)
def test_spec_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        AdaptationSpec(**{"method": "adamix", "adapter_dim": 4, "num_experts": 4, **bad})


@pytest.mark.parametrize(("share", "down", "up"), [("up", 4, 1), ("down", 1, 4), ("none", 4, 4)])
def test_sharing_gives_expert_counts(share, down, up):
    model = adapted(bert(), num_experts=4, share=share)
    for a in adapters(model):
        assert (a.down.num_experts, a.up.num_experts) == (down, up)
        assert a.down.weight.shape == (down, 4, HIDDEN) and a.up.bias.shape == (up, HIDDEN)


@pytest.mark.parametrize("build", [bert, roberta])
def test_encoder_targets_are_ffn_output_only(build):
    model = adapted(build())
    wrapped = [n for n, m in model.named_modules() if isinstance(m, AdaptedModule)]
    assert len(wrapped) == model.config.num_hidden_layers
    assert all(n.endswith(f"layer.{i}.output.dense") for i, n in enumerate(wrapped))
    assert not any("attention" in n for n in wrapped)
    assert logits(model).shape == (3, 3)


def test_gpt2_target_is_mlp_c_proj():
    model = adapted(gpt2())
    wrapped = [n for n, m in model.named_modules() if isinstance(m, AdaptedModule)]
    assert wrapped == ["transformer.h.0.mlp.c_proj", "transformer.h.1.mlp.c_proj"]
    assert logits(model).shape == (3, 3)
    assert {n.split(".")[0] for n, _ in trainable_parameters(model)} == {"transformer", "score"}


def test_unknown_model_type_lists_supported():
    model = torch.nn.Linear(2, 2)
    model.config = type("Cfg", (), {"model_type": "t5", "hidden_size": 2})()
    with pytest.raises(ValueError, match=r"supported.*bert"):
        apply(model, AdaptationSpec("adamix", 4), 0)


def test_only_adaptation_and_head_train():
    model = adapted(bert(), num_experts=4)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {n for n, _ in trainable_parameters(model)}
    assert trainable == set(adaptation_state_dict(model)) | set(head_state_dict(model))
    assert all(".adapter." in n or n.startswith("classifier.") for n in trainable)
    assert not any("pooler" in n or "LayerNorm" in n for n in trainable)
    assert "router" not in " ".join(model.state_dict())
    assert isinstance(router_of(model), Router)


# --- merge ---------------------------------------------------------------------------------------------


def test_merged_adapter_is_the_adapter_of_the_mean_experts():
    a = tiny_adapter("merge", share="none", m=3)
    h = torch.randn(2, 5, 8)
    d, u = a.down, a.up
    expected = ref_adapter(h, d.weight.mean(0), d.bias.mean(0), u.weight.mean(0), u.bias.mean(0))
    mean_of_outputs = torch.stack(
        [ref_adapter(h, d.weight[j], d.bias[j], u.weight[j], u.bias[j]) for j in range(3)]
    ).mean(0)
    with torch.no_grad():
        out = a(h)
    torch.testing.assert_close(out, expected)
    assert not torch.allclose(out, mean_of_outputs, atol=1e-7, rtol=0)


def test_merged_view_is_cached_until_train_or_load():
    a = tiny_adapter("merge")
    with torch.no_grad():
        first = a.down.merged()[0]
        a(torch.randn(2, 8))
        assert a.down.merged()[0] is first
        a.train()
        a.eval()
        second = a.down.merged()[0]
        assert second is not first
        a.load_state_dict(a.state_dict())
        assert a.down.merged()[0] is not second


def test_single_expert_adamix_is_a_plain_adapter():
    plain = adapted(bert(), method="adapter")
    mix = adapted(bert(), method="adamix", num_experts=1, share="none")
    torch.testing.assert_close(logits(plain), logits(mix), rtol=0, atol=0)
    layer = plain.bert.encoder.layer[0].output.dense
    a = layer.adapter
    x = torch.randn(2, 5, 37)
    h = layer.base(x)
    expected = ref_adapter(h, a.down.weight[0], a.down.bias[0], a.up.weight[0], a.up.bias[0])
    torch.testing.assert_close(layer(x), expected)


def test_merge_collapses_to_a_plain_adapter_without_draws():
    model = adapted(bert(), num_experts=4)
    with torch.no_grad():
        before = logits(model)
        merge(model)
        merge(model)  # idempotent
        router = router_of(model)
        state = router.generator.get_state()
        model.train()
        trained = logits(model)
        model.eval()
        evaluated = logits(model)
    assert all(a.down.num_experts == 1 and a.up.num_experts == 1 for a in adapters(model))
    assert torch.equal(router.generator.get_state(), state)
    torch.testing.assert_close(trained, evaluated, rtol=0, atol=0)
    torch.testing.assert_close(evaluated, before)
    assert all(p.requires_grad for _, p in trainable_parameters(model))


# --- routing -------------------------------------------------------------------------------------------


def test_routing_is_reproducible_from_seed():
    def draws(seed):
        router = Router(seed)
        return [router.draw(4)[0] for _ in range(30)]

    assert draws(3) == draws(3)
    assert draws(3) != draws(4)
    a, b, c = (adapted(bert(), seed=s, num_experts=4).train() for s in (7, 7, 8))
    with torch.no_grad():
        torch.testing.assert_close(logits(a), logits(b), rtol=0, atol=0)
        assert not torch.equal(logits(a), logits(c))


def test_views_route_each_half_to_its_own_expert():
    torch.manual_seed(0)
    router = Router(0)
    layer = ExpertLinear(8, 6, 4, router).train()
    x = torch.randn(3, 8)
    while True:  # find a step whose two draws differ, predicting them from a copy of the generator
        probe = torch.Generator()
        probe.set_state(router.generator.get_state())
        i0, i1 = torch.randint(4, (2,), generator=probe).tolist()
        if i0 != i1:
            break
        router.draw(4)
        router.draw(4)
    with router.views(2):
        out = layer(torch.cat([x, x]))
    assert router.num_views == 1
    torch.testing.assert_close(out[:3], F.linear(x, layer.weight[i0], layer.bias[i0]))
    torch.testing.assert_close(out[3:], F.linear(x, layer.weight[i1], layer.bias[i1]))


def test_unselected_experts_get_zero_gradients():
    torch.manual_seed(0)
    router = Router(0)
    layer = ExpertLinear(8, 6, 4, router).train()
    probe = torch.Generator()
    probe.set_state(router.generator.get_state())
    chosen = torch.randint(4, (1,), generator=probe).item()
    layer(torch.randn(5, 8)).sum().backward()
    for j in range(4):
        assert layer.weight.grad is not None and layer.bias.grad is not None
        assert (layer.weight.grad[j].abs().sum() > 0) == (j == chosen)
        assert (layer.bias.grad[j].abs().sum() > 0) == (j == chosen)


def test_single_expert_side_draws_nothing():
    router = Router(0)
    layer = ExpertLinear(8, 6, 1, router).train()
    state = router.generator.get_state()
    layer(torch.randn(2, 8))
    assert torch.equal(router.generator.get_state(), state)


def test_router_state_round_trip():
    router = Router(0)
    router.draw(4)
    saved = router.state_dict()
    expected = router.draw(4)
    other = Router(99)
    other.load_state_dict(saved)
    assert other.draw(4) == expected
    with pytest.raises(ValueError, match="keys"):
        other.load_state_dict({"generator": saved["generator"]})


# --- eval alternatives ---------------------------------------------------------------------------------


def test_fixed_routing_uses_the_chosen_expert_and_shared_module():
    a = tiny_adapter("fixed", share="up", m=3)
    h = torch.randn(2, 8)
    d, u = a.down, a.up
    torch.testing.assert_close(a(h), ref_adapter(h, d.weight[2], d.bias[2], u.weight[0], u.bias[0]))


def test_random_routing_picks_one_expert_per_sequence_and_projection():
    a = tiny_adapter("random", share="none", m=3, seed=5)
    h = torch.randn(6, 4, 8)
    train_state = a.router.generator.get_state()
    probe = torch.Generator().manual_seed(6)  # the eval generator is seeded with seed + 1
    down_idx = torch.randint(3, (6,), generator=probe)
    up_idx = torch.randint(3, (6,), generator=probe)
    out = a(h)
    d, u = a.down, a.up
    for row in range(6):
        i, j = down_idx[row], up_idx[row]
        torch.testing.assert_close(out[row], ref_adapter(h[row], d.weight[i], d.bias[i], u.weight[j], u.bias[j]))
    assert torch.equal(a.router.generator.get_state(), train_state)


@pytest.mark.parametrize("share", ["up", "none"])
def test_ensemble_averages_expert_pair_outputs(share):
    a = tiny_adapter("ensemble", share=share, m=3)
    h = torch.randn(2, 8)
    d, u = a.down, a.up
    outs = [
        ref_adapter(h, d.weight[j], d.bias[j], u.weight[j % u.num_experts], u.bias[j % u.num_experts])
        for j in range(3)
    ]
    torch.testing.assert_close(a(h), torch.stack(outs).mean(0))


# --- state dicts ---------------------------------------------------------------------------------------


def test_state_dict_round_trip_gives_equal_logits():
    source = adapted(bert(), init_seed=1, num_experts=4)
    target = adapted(bert(), init_seed=2, num_experts=4)
    with torch.no_grad():
        for _, p in trainable_parameters(source):
            p.add_(0.1 * torch.randn_like(p))
    assert not torch.allclose(logits(source), logits(target))
    load_adaptation_state_dict(target, adaptation_state_dict(source))
    load_head_state_dict(target, head_state_dict(source))
    torch.testing.assert_close(logits(source), logits(target), rtol=0, atol=0)


def test_strict_loaders_name_the_bad_key():
    model = adapted(bert(), num_experts=4)
    state = dict(adaptation_state_dict(model))
    key = next(iter(state))
    del state[key]
    with pytest.raises(ValueError, match=rf"missing keys.*{re.escape(key)}"):
        load_adaptation_state_dict(model, state)
    head = dict(head_state_dict(model))
    head["classifier.weight"] = torch.zeros(5, HIDDEN)
    with pytest.raises(ValueError, match=r"shape mismatch.*classifier\.weight"):
        load_head_state_dict(model, head)
    extra = {**adaptation_state_dict(model), "bert.pooler.dense.weight": torch.zeros(HIDDEN, HIDDEN)}
    with pytest.raises(ValueError, match=r"unexpected keys.*bert\.pooler\.dense\.weight"):
        load_adaptation_state_dict(model, extra)


# --- merge cache (issue 12) ----------------------------------------------------------------------------------


def test_merge_cache_never_outlives_a_training_step():
    """A no-grad call in train mode (a metric, a probe) must not leave a mean that eval reads after the step."""
    layer = ExpertLinear(4, 3, 2, Router(0)).train()
    with torch.no_grad():
        layer.merged()
        layer.weight.add_(1.0)  # the optimizer's in-place update
        layer.bias.add_(1.0)
    layer.eval()
    with torch.no_grad():
        weight, bias = layer.merged()
    torch.testing.assert_close(weight, layer.weight.mean(0))
    torch.testing.assert_close(bias, layer.bias.mean(0))


def test_merge_cache_is_reused_in_eval_and_dropped_by_every_mode_switch():
    layer = ExpertLinear(4, 3, 2, Router(0)).eval()
    with torch.no_grad():
        first = layer.merged()
        assert layer.merged() is first  # cached while evaluating
        layer.train()
        layer.eval()
        assert layer.merged() is not first
