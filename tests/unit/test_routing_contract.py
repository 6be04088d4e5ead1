"""The router's defaults and refusals (survivors of `make mutate`, docs/TESTING.md)."""

from __future__ import annotations

import pytest

from adamix_runner.adaptation.routing import Router


def test_by_default_the_router_merges_and_fixed_routing_takes_the_first_module():
    router = Router(seed=0)
    assert (router.inference, router.fixed_expert) == ("merge", 0)


def test_a_wrong_rule_or_expert_is_refused_with_what_is_allowed():
    with pytest.raises(
        ValueError, match=r"^inference must be one of \('merge', 'random', 'fixed', 'ensemble'\), got 'vote'$"
    ):
        Router(seed=0, inference="vote")
    with pytest.raises(ValueError, match=r"^fixed_expert must be >= 0, got -1$"):
        Router(seed=0, fixed_expert=-1)
