"""Issue 14's defect audit, pinned: what the optimizer, the schedule and the evaluation paths do to stacked experts.

Each test names the official behaviour it pins (method reference §1.4, §4, §6.1; DESIGN.md §5).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from transformers import BertConfig, BertForSequenceClassification

from adamix_runner.adaptation import AdaptationSpec, BottleneckAdapter, ExpertLinear, Router, apply
from adamix_runner.adaptation import trainable_parameters as trainable
from adamix_runner.config.checks import adaptation_spec
from adamix_runner.config.compose import compose_config
from adamix_runner.errors import UserError
from adamix_runner.training.losses import adamix_loss
from adamix_runner.training.optim import build_optimizer, build_scheduler

LR, WD = 1e-2, 0.1


def _model(m=4, share="up"):
    cfg = BertConfig(
        vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
        num_labels=2, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    )  # fmt: skip
    torch.manual_seed(0)
    model = BertForSequenceClassification(cfg)
    apply(model, AdaptationSpec("adamix", adapter_dim=4, num_experts=m, share=share), seed=0)
    return model.train()


def _expert_layers(model) -> list[ExpertLinear]:
    return [m for m in model.modules() if isinstance(m, ExpertLinear) and m.num_experts > 1]


def test_decay_groups_put_expert_weights_in_decay_and_biases_layernorm_out():
    model = _model()
    params = [p for _, p in trainable(model)]
    opt = build_optimizer(model, params, LR, WD)
    decay, no_decay = ({id(p) for p in g["params"]} for g in opt.param_groups)
    assert [g["weight_decay"] for g in opt.param_groups] == [WD, 0.0]
    for layer in _expert_layers(model):
        assert id(layer.weight) in decay and id(layer.bias) in no_decay
    assert decay | no_decay == {id(p) for p in params}


def test_an_unrouted_expert_still_gets_adamw_decay_and_momentum():
    """Official semantics (zeroed, not None, gradients): AdamW moves every expert on every step."""
    model = _model()
    ids = torch.randint(2, 100, (3, 7), generator=torch.Generator().manual_seed(0))
    opt = build_optimizer(model, [p for _, p in trainable(model)], LR, WD)
    layer = _expert_layers(model)[0]
    probe = torch.Generator()
    probe.set_state(model.adamix_router.generator.get_state())
    first = torch.randint(4, (1,), generator=probe).item()  # the first ExpertLinear of the forward draws first
    never = next(j for j in range(4) if j != first)
    before = layer.weight.detach().clone()
    model(input_ids=ids).logits.sum().backward()
    for j in range(4):
        assert bool(layer.weight.grad[j].abs().sum() > 0) == (j == first)
    opt.step()
    opt.zero_grad()
    # Step 1: an unrouted expert has zero moments, so AdamW only decays it: w * (1 - lr * wd), exactly.
    torch.testing.assert_close(layer.weight[never], before[never] * (1 - LR * WD))
    assert not torch.allclose(layer.weight[first], before[first] * (1 - LR * WD))
    # Step 2 with an all-zero gradient: the routed expert keeps moving by its momentum beyond the decay.
    after_one = layer.weight.detach().clone()
    for p in model.parameters():
        if p.requires_grad:
            p.grad = torch.zeros_like(p)
    opt.step()
    assert not torch.allclose(layer.weight[first], after_one[first] * (1 - LR * WD))
    torch.testing.assert_close(layer.weight[never], after_one[never] * (1 - LR * WD))


def test_schedule_counts_optimizer_steps_not_experts():
    """Linear warmup ceil(0.06 * total) then linear decay to 0, the same for M = 1 and M = 4 (HF `linear`)."""
    lrs = {}
    for m in (1, 4):
        model = _model(m=m)
        opt = build_optimizer(model, [p for _, p in trainable(model)], LR, WD)
        sched = build_scheduler(opt, total_steps=78, warmup_ratio=0.06)
        seen = []
        for _ in range(78):
            seen.append(sched.get_last_lr()[0])
            opt.step()
            sched.step()
        lrs[m] = seen
    warmup = math.ceil(78 * 0.06)
    assert warmup == 5
    assert lrs[1] == lrs[4]
    assert lrs[1][0] == 0.0 and lrs[1][warmup] == LR
    assert math.isclose(lrs[1][-1], LR / (78 - warmup))


def test_experts_are_independent_normal_002_draws_with_zero_bias():
    """Official NLU init (reference §1.4): HF init_weights re-draws every expert Linear N(0, 0.02), bias 0."""
    torch.manual_seed(0)
    layer = ExpertLinear(384, 16, 4, Router(0))
    assert torch.count_nonzero(layer.bias) == 0
    for j in range(4):
        assert abs(float(layer.weight[j].detach().std()) - 0.02) < 0.001
        assert abs(float(layer.weight[j].detach().mean())) < 0.001
    w = layer.weight.detach()
    cos = nn.functional.cosine_similarity(w[0].flatten(), w[1].flatten(), dim=0)
    assert abs(float(cos)) < 0.05  # independent draws, not copies
    # Averaging M independent draws shrinks the merged weight's norm by ~1/sqrt(M) at step 0.
    shrink = w.mean(0).norm() / w.flatten(1).norm(dim=1).mean()
    assert abs(float(shrink) - 0.5) < 0.02


def test_ensemble_is_the_expectation_of_the_training_route_and_fixed_eval_equals_a_training_draw():
    """share=up trains one down expert per forward, uniformly: its expected output is the ensemble rule; the eval
    path of expert j is exactly the training path that drew j (no other train/eval difference)."""
    torch.manual_seed(1)
    router = Router(3)
    a = BottleneckAdapter(8, 4, 4, "up", router)
    h = torch.randn(2, 5, 8)
    a.train()
    probe = torch.Generator()
    probe.set_state(router.generator.get_state())
    drawn = torch.randint(4, (1,), generator=probe).item()
    with torch.no_grad():
        trained = a(h)
        a.eval()
        router.inference = "fixed"
        per_expert = []
        for j in range(4):
            router.fixed_expert = j
            per_expert.append(a(h))
        router.inference = "ensemble"
        ensemble = a(h)
    torch.testing.assert_close(trained, per_expert[drawn], rtol=0, atol=0)
    torch.testing.assert_close(ensemble, torch.stack(per_expert).mean(0))


def test_identical_expert_init_copies_the_first_expert_and_merges_to_it():
    torch.manual_seed(1)
    a = BottleneckAdapter(8, 4, 3, "none", Router(0), expert_init="identical").eval()
    torch.manual_seed(1)
    independent = BottleneckAdapter(8, 4, 3, "none", Router(0))
    for layer, ref in ((a.down, independent.down), (a.up, independent.up)):
        assert all(torch.equal(layer.weight[j], ref.weight[0]) for j in range(3))
    h = torch.randn(2, 8)
    a.router.inference = "fixed"
    with torch.no_grad():
        single = a(h)
        a.router.inference = "merge"
        torch.testing.assert_close(a(h), single)


def test_zero_up_init_starts_as_the_identity_and_keeps_the_down_draws():
    torch.manual_seed(1)
    a = BottleneckAdapter(8, 4, 3, "up", Router(0), up_init="zero").eval()
    torch.manual_seed(1)
    ref = BottleneckAdapter(8, 4, 3, "up", Router(0))
    assert torch.count_nonzero(a.up.weight) == 0
    assert torch.equal(a.down.weight, ref.down.weight)
    h = torch.randn(2, 5, 8)
    torch.testing.assert_close(a(h), h, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("expert_init", "same", "peft.expert_init must be one of ('independent', 'identical'), got 'same'"),
        ("up_init", "zeros", "peft.up_init must be one of ('normal', 'zero'), got 'zeros'"),
    ],
)
def test_bad_init_option_is_a_user_error(key, value, message):
    cfg = compose_config(f"peft.{key}={value}")
    with pytest.raises(UserError) as error:
        adaptation_spec(cfg)
    assert str(error.value) == message


def test_consistency_pass_sends_gradient_to_exactly_the_experts_each_view_drew():
    """Fused [x; x] forward (views=2): per layer, each half draws its own down expert; the CE of view 1 and the
    symmetric KL (stop-gradient on each target) reach exactly the drawn experts, and every drawn one."""
    model = _model(m=4, share="up")
    router = model.adamix_router
    ids = torch.randint(2, 100, (3, 7), generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 1, 1])
    probe = torch.Generator()
    probe.set_state(router.generator.get_state())
    layers = _expert_layers(model)  # module order is forward order: one down mixture per transformer layer
    drawn = [set(torch.randint(4, (2,), generator=probe).tolist()) for _ in layers]
    with router.views(2):
        logits = model(input_ids=torch.cat([ids, ids])).logits
    loss, parts = adamix_loss(logits, labels, 2, consistency_weight=1.0, num_views=2)
    assert float(parts["consistency_loss"]) > 0  # the two halves went through different experts somewhere
    loss.backward()
    for layer, chosen in zip(layers, drawn, strict=True):
        got = {j for j in range(4) if float(layer.weight.grad[j].abs().sum()) > 0}
        assert got == chosen
