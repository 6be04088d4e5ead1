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
    same seed picks the same experts; eval-time random routing uses a separate generator, so evaluating never
    shifts the training draws. Every evaluation restarts that generator at ``eval_seed`` (``seed + 1`` unless
    adamix-evaluate sets another, :meth:`restart_eval_stream`), so an evaluation's draws do not depend on how many
    evaluations came before it: the epoch-end ones, the final one and ``adamix-evaluate``'s ``random-seed0`` draw
    the same experts.
    """

    def __init__(self, seed: int, inference: str = "merge", fixed_expert: int = 0) -> None:
        if inference not in INFERENCE_MODES:
            raise ValueError(f"inference must be one of {INFERENCE_MODES}, got {inference!r}")
        if fixed_expert < 0:
            raise ValueError(f"fixed_expert must be >= 0, got {fixed_expert}")
        self.inference = inference
        self.fixed_expert = fixed_expert
        self.generator = torch.Generator().manual_seed(seed)
        self.eval_seed = seed + 1
        self.eval_generator = torch.Generator().manual_seed(self.eval_seed)
        self.num_views = 1

    def restart_eval_stream(self) -> None:
        """Start the eval-time draws afresh from ``eval_seed``: called at the start of every evaluation."""
        self.eval_generator.manual_seed(self.eval_seed)

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
