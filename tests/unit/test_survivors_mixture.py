"""ExpertLinear behaviours that mutation testing (`make mutate`, docs/TESTING.md) found unpinned: a two-expert layer
routes to the expert asked for (with and without a bias), one expert keeps its bias, a grouped layer adds its bias,
random routing sends each sequence to its drawn expert (grouped or not, with or without a bias), the stacked-views
and groups checks say what is wrong, dtype and device reach both parameters, the merged view stays differentiable
and fresh in eval mode with autograd on, a dtype change drops the cached merge, what one merged expert counts, and
the layer's repr."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from adamix_runner.adaptation.mixture import ExpertLinear
from adamix_runner.adaptation.routing import Router


def layer(num_experts: int = 4, **kw) -> ExpertLinear:
    torch.manual_seed(0)
    made = ExpertLinear(8, 4, num_experts, Router(0), **kw)
    if made.bias is not None:
        torch.nn.init.normal_(made.bias)
    return made


def test_a_two_expert_layer_applies_the_expert_asked_for():
    two = layer(2)
    x = torch.randn(3, 8)
    for j in (0, 1):
        torch.testing.assert_close(two(x, expert=j), F.linear(x, two.weight[j], two.bias[j]))


def test_one_expert_keeps_its_bias_and_a_bias_free_pair_routes_without_one():
    one = layer(1)
    x = torch.randn(3, 8)
    torch.testing.assert_close(one(x), F.linear(x, one.weight[0], one.bias[0]))
    pair = layer(2, bias=False)
    torch.testing.assert_close(pair(x, expert=1), F.linear(x, pair.weight[1]))


def test_a_grouped_layer_reads_block_i_of_the_input_for_block_i_and_adds_the_bias():
    grouped = layer(2, groups=2)  # weight [2, 4, 4]: output block i (2 rows) reads input block i (4 columns)
    x = torch.randn(3, 8)
    w, b = grouped.weight[1], grouped.bias[1]
    expected = torch.cat([x[:, :4] @ w[:2].T, x[:, 4:] @ w[2:].T], dim=-1) + b
    torch.testing.assert_close(grouped(x, expert=1), expected)


def test_a_batch_that_is_not_equal_stacked_views_is_refused_with_its_size():
    routed = layer(2).train()
    with routed.router.views(2), pytest.raises(ValueError, match=r"^batch dim 3 is not 2 equal stacked views$"):
        routed(torch.randn(3, 5, 8))


def test_in_eval_mode_with_autograd_on_each_call_merges_the_current_experts():
    merged = layer(4).eval()
    x = torch.randn(3, 8)
    merged(x).sum().backward()
    merged(x).sum().backward()  # a cached mean would hold the freed graph of the first call
    assert merged.weight.grad is not None
    with torch.no_grad():
        merged.weight.add_(1.0)
    expected = F.linear(x, merged.weight.mean(0), merged.bias.mean(0))
    torch.testing.assert_close(merged(x), expected)  # not the mean before the change


def test_a_dtype_change_drops_the_cached_merge():
    merged = layer(4).eval()
    with torch.no_grad():
        merged(torch.randn(3, 8))  # caches the float32 mean
        merged.double()
        x = torch.randn(3, 8, dtype=torch.float64)
        torch.testing.assert_close(merged(x), F.linear(x, merged.weight.mean(0), merged.bias.mean(0)))


def test_one_merged_expert_counts_its_weight_and_bias_as_an_int():
    counts = [layer(4).inference_numel(), layer(1, bias=False).inference_numel(), layer(3, groups=2).inference_numel()]
    assert counts == [8 * 4 + 4, 8 * 4, 4 * 8 // 2 + 4]
    assert all(type(count) is int for count in counts)


def test_the_repr_names_the_shape_experts_and_options():
    assert repr(layer(4)) == "ExpertLinear(in=8, out=4, experts=4)"
    assert repr(layer(2, bias=False, groups=2)) == "ExpertLinear(in=8, out=4, experts=2, bias=False, groups=2)"


@pytest.mark.parametrize(("groups", "bias"), [(1, True), (2, True), (2, False)])
def test_random_routing_sends_each_sequence_to_the_expert_drawn_for_it(groups, bias):
    """The eval stream draws one expert per row (dim 0); every token of the row goes through that expert."""
    routed = layer(4, groups=groups, bias=bias).eval()
    routed.router.inference = "random"
    x = torch.randn(6, 5, 8)  # 6 sequences of 5 tokens
    drawn = Router(0).draw_per_row(4, 6)  # a twin router's fresh eval stream
    assert len(set(drawn.tolist())) > 1
    with torch.no_grad():
        out = routed(x)
    for row, j in enumerate(drawn.tolist()):
        w = routed.weight[j]
        half = 4 // groups
        blocks = [
            x[row, :, g * (8 // groups) : (g + 1) * (8 // groups)] @ w[g * half : (g + 1) * half].T
            for g in range(groups)
        ]
        expected = torch.cat(blocks, dim=-1) + (routed.bias[j] if bias else 0)
        torch.testing.assert_close(out[row], expected)


def test_sizes_that_groups_do_not_divide_are_refused_and_dtype_and_device_reach_both_parameters():
    with pytest.raises(ValueError, match=r"^in=8 and out=6 must be multiples of groups=4$"):
        ExpertLinear(8, 6, 2, Router(0), groups=4)
    wide = ExpertLinear(8, 4, 2, Router(0), dtype=torch.float64)
    assert wide.weight.dtype == wide.bias.dtype == torch.float64
    meta = ExpertLinear(8, 4, 2, Router(0), device=torch.device("meta"))
    assert meta.weight.device.type == meta.bias.device.type == "meta"
