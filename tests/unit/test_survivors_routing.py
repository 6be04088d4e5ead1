"""The router's refusals and its eval stream, which mutation testing (`make mutate`, docs/TESTING.md) found
unpinned: the last routed layer called a second time is refused with the full message (not an IndexError), every
evaluation's random routing restarts at the eval seed whatever came before, and two experts are drawn before the
forward like more (a layer drawing for itself inside a compiled region would break the graph)."""

from __future__ import annotations

import pytest
import torch

from adamix_runner.adaptation import AdaptationSpec, ExpertLinear, Router, apply
from tests.unit.test_routing_predraw import SEED, _adapted, _bert, _ids, _record_calls

OUT_OF_ORDER = (
    "a mixture layer ran out of the order its experts were drawn in (module order, each routed layer once per "
    "forward of the model the router is attached to); call each mixture once per forward, in module order"
)


def test_the_last_mixture_called_twice_is_refused_with_the_whole_message():
    model = _adapted("bert-adamix-share-none")
    last = [m for m in model.modules() if isinstance(m, ExpertLinear)][-1]
    last.register_forward_hook(lambda m, args, out: m.forward(args[0]) * 0 + out)
    with pytest.raises(RuntimeError) as refused:
        model(input_ids=_ids())
    assert str(refused.value) == OUT_OF_ORDER


def test_each_evaluation_restarts_the_random_routing_at_the_eval_seed():
    router = Router(seed=3, inference="random")
    first = router.draw_per_row(8, 16)
    router.draw_per_row(8, 16)  # a second evaluation's draws would differ without the restart
    router.restart_eval_stream()
    assert torch.equal(router.draw_per_row(8, 16), first)
    assert torch.equal(first, torch.randint(8, (16,), generator=torch.Generator().manual_seed(4)))  # seed + 1


def test_two_experts_are_drawn_before_the_forward():
    model = _bert()
    apply(model, AdaptationSpec(method="adamix", share="none", adapter_dim=4, num_experts=2), SEED)
    calls = _record_calls(model.train())
    model(input_ids=_ids())
    assert calls and all(route is not None for _, route in calls)
