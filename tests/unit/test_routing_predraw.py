"""Routing drawn before the forward (outside compiled regions) gives each layer the draws it made for itself.

The reference is the old per-layer draw: in the order the mixtures run, ``torch.randint(M, (views,))`` from a
generator seeded like the router's. The layers' call order is recorded by hooks, independently of module order.
"""

from __future__ import annotations

import pytest
import torch
from accelerate.utils import compile_regions
from torch._dynamo.utils import counters
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
    RobertaConfig,
    RobertaForSequenceClassification,
)

from adamix_runner.adaptation import AdaptationSpec, ExpertLinear, Router, apply, router_of

SEED = 7
NO_DROPOUT = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
DECODER = {"vocab_size": 64, "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 2}
HEADS = {"num_attention_heads": 2, "num_key_value_heads": 2}


def _bert():
    return BertForSequenceClassification(
        BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=24,
                   num_labels=3, **NO_DROPOUT)
    )  # fmt: skip


def _roberta():
    return RobertaForSequenceClassification(
        RobertaConfig(vocab_size=64, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=24,
                      num_labels=3, max_position_embeddings=40, type_vocab_size=1, pad_token_id=1, **NO_DROPOUT)
    )  # fmt: skip


def _gpt2():
    return GPT2LMHeadModel(GPT2Config(vocab_size=64, n_embd=16, n_layer=2, n_head=2, n_positions=32))


CASES = {
    "bert-adamix-share-none": (_bert, {"method": "adamix", "share": "none"}),
    "bert-adamix-list-attention-and-ffn": (_bert, {"method": "adamix", "share": "none", "adapter_form": "list"}),
    "roberta-lora-attention-share-none": (_roberta, {"method": "adamix_lora", "share": "none",
                                                     "lora_targets": "attention"}),
    "gpt2-lora-fused-c_attn": (_gpt2, {"method": "adamix_lora", "share": "none"}),
    "gpt2-lora-all-linear": (_gpt2, {"method": "adamix_lora", "share": "up", "lora_targets": "all_linear"}),
    "gpt2-adamix-adapter": (_gpt2, {"method": "adamix", "share": "down"}),
    "llama-lora-all-linear": (lambda: LlamaForCausalLM(LlamaConfig(**DECODER, **HEADS)),
                              {"method": "adamix_lora", "share": "none", "lora_targets": "all_linear"}),
    "qwen2-lora-all-linear": (lambda: Qwen2ForCausalLM(Qwen2Config(**DECODER, **HEADS)),
                              {"method": "adamix_lora", "share": "none", "lora_targets": "all_linear"}),
    "bert-unipelt-no-routing": (_bert, {"method": "unipelt"}),
}  # fmt: skip


def _adapted(case: str):
    build, spec = CASES[case]
    torch.manual_seed(0)
    model = build()
    apply(model, AdaptationSpec(adapter_dim=4, lora_rank=2, num_experts=1 if spec["method"] == "unipelt" else 3,
                                **spec), SEED)  # fmt: skip
    return model.train()


def _ids(batch: int = 2) -> torch.Tensor:
    return torch.randint(2, 60, (batch, 5), generator=torch.Generator().manual_seed(0))


def _record_calls(model) -> list[tuple[ExpertLinear, torch.Tensor | None]]:
    """Every mixture call of a forward, in call order, with the route it held at that moment."""
    calls = []
    for module in model.modules():
        if isinstance(module, ExpertLinear):
            module.register_forward_pre_hook(lambda m, args: calls.append((m, None if m.route is None else m.route)))
    return calls


@pytest.mark.parametrize("views", [1, 2])
@pytest.mark.parametrize("case", sorted(CASES))
def test_predrawn_routes_are_the_sequential_per_layer_draws(case, views):
    model = _adapted(case)
    calls = _record_calls(model)
    reference = torch.Generator().manual_seed(SEED)
    for _ in range(2):  # the second forward continues the stream where the first left it
        calls.clear()
        with router_of(model).views(views):
            model(input_ids=_ids(2 * views))
        routed = [(layer, route) for layer, route in calls if layer.num_experts > 1]
        assert len({id(layer) for layer, _ in routed}) == len(routed)  # each routed layer runs once
        for layer, route in routed:
            expected = torch.randint(layer.num_experts, (views,), generator=reference)
            assert route is not None and torch.equal(route, expected)
        assert all(layer.route is None for layer, _ in calls)  # cleared after the forward
    assert torch.equal(router_of(model).generator.get_state(), reference.get_state())
    if case == "bert-unipelt-no-routing":
        assert not any(layer.num_experts > 1 for layer, _ in calls)


def test_a_lone_layer_draws_for_itself():
    router = Router(SEED)
    layer = ExpertLinear(4, 3, 5, router).train()
    x = torch.randn(2, 4)
    out = layer(x)
    expert = int(torch.randint(5, (1,), generator=torch.Generator().manual_seed(SEED)))
    assert torch.equal(out, torch.nn.functional.linear(x, layer.weight[expert], layer.bias[expert]))


def test_a_mixture_called_twice_in_one_forward_is_refused():
    model = _adapted("bert-adamix-share-none")
    first = next(m for m in model.modules() if isinstance(m, ExpertLinear))
    first.register_forward_hook(lambda m, args, out: m.forward(args[0]) * 0 + out)
    with pytest.raises(RuntimeError, match="out of the order its experts were drawn in"):
        model(input_ids=_ids())
    assert first.route is None  # the forward failed, the routes were still cleared


def _steps(model, steps: int = 3) -> list[float]:
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-2)
    losses = []
    for step in range(steps):
        ids = torch.randint(2, 60, (4, 6 + step), generator=torch.Generator().manual_seed(step))
        with router_of(model).views(2):
            logits = model(input_ids=torch.cat([ids, ids])).logits
        loss = logits.float().pow(2).mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    return losses


@pytest.mark.slow  # ~11 s; make test-slow and .ci/run run it, beside tests/integration/test_compile_routing.py
def test_compiled_regions_trace_without_graph_breaks_and_train_as_eager():
    """Dynamo with the eager backend: the graphs train.compile=true compiles, without Inductor's code generation
    (tests/integration/test_compile_routing.py runs Inductor through run())."""
    eager = _steps(_adapted("bert-adamix-share-none"))
    torch._dynamo.reset()
    counters.clear()
    compiled = compile_regions(_adapted("bert-adamix-share-none"), dynamic=True, backend="eager")
    assert _steps(compiled) == pytest.approx(eager, abs=1e-6)
    assert dict(counters["graph_break"]) == {}
    assert counters["stats"]["unique_graphs"] > 0  # the regions were traced
