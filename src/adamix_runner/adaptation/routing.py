"""The router: routing randomness and mode shared by every mixture layer of one model.

Not an ``nn.Module``: it owns no tensors that train, only generators, so it stays out of the model's
``state_dict`` and is saved in checkpoints through its own :meth:`Router.state_dict`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

INFERENCE_MODES = ("merge", "random", "fixed", "ensemble")


class Router:
    """Seeded expert draws for training, and the eval-mode inference rule.

    Training draws come from ``generator`` (seeded with ``seed``) so that every rank and every rerun with the
    same seed picks the same experts; eval-time random routing uses a separate generator (``seed + 1``), so
    evaluating never shifts the training draws.
    """

    def __init__(self, seed: int, inference: str = "merge", fixed_expert: int = 0) -> None:
        if inference not in INFERENCE_MODES:
            raise ValueError(f"inference must be one of {INFERENCE_MODES}, got {inference!r}")
        if fixed_expert < 0:
            raise ValueError(f"fixed_expert must be >= 0, got {fixed_expert}")
        self.inference = inference
        self.fixed_expert = fixed_expert
        self.generator = torch.Generator().manual_seed(seed)
        self.eval_generator = torch.Generator().manual_seed(seed + 1)
        self.num_views = 1

    @contextmanager
    def views(self, n: int) -> Iterator[Router]:
        """Within the block, a forward input's dim 0 is ``n`` stacked copies of the batch, each routed alone.

        This is the fused consistency pass: one forward over ``[x; x]`` where each half draws its own experts.
        """
        if n < 1:
            raise ValueError(f"views needs n >= 1, got {n}")
        previous, self.num_views = self.num_views, n
        try:
            yield self
        finally:
            self.num_views = previous

    def draw(self, num_experts: int) -> list[int]:
        """One training expert index per view (batch-level routing, as in the official code)."""
        return torch.randint(num_experts, (self.num_views,), generator=self.generator).tolist()

    def draw_per_row(self, num_experts: int, rows: int) -> torch.Tensor:
        """One eval expert index per sequence, from the eval generator (official ``inference_level=1``)."""
        return torch.randint(num_experts, (rows,), generator=self.eval_generator)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"generator": self.generator.get_state(), "eval_generator": self.eval_generator.get_state()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        expected = {"generator", "eval_generator"}
        if set(state) != expected:
            raise ValueError(f"router state must have keys {sorted(expected)}, got {sorted(state)}")
        self.generator.set_state(state["generator"])
        self.eval_generator.set_state(state["eval_generator"])
