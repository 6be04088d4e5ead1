"""The router: routing randomness and mode shared by every mixture layer of one model.

Not an ``nn.Module``: it owns no tensors that train, only generators, so it stays out of the model's
``state_dict`` and is saved in checkpoints through its own :meth:`Router.state_dict`.

Before each forward of the model it is attached to (``adaptation.apply``), it draws the training experts of every
routed layer in one go, outside any compiled region, and hands each layer its draws as a small int tensor on the
layer's device: the layers index their experts with it, so ``torch.compile`` sees no generator, no ``.tolist()``
and no graph break. The draws are those each layer made for itself before: the same calls on the same generator, in
the order the layers run (module order, which eager forwards check).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn

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
        self._layers: list[nn.Module] = []
        self._drawn: list[nn.Module] = []
        self._turn = 0

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

    def route_layers(self, layers: Sequence[nn.Module]) -> None:
        """The mixtures :meth:`draw_routes` draws for, in module order (the order they run in)."""
        self._layers = list(layers)

    def draw_routes(self) -> None:
        """Draw the experts of every layer that routes in this forward (train mode, more than one expert) and set
        them as its ``route``; called before the model's forward, outside any compiled region."""
        drawn = [layer for layer in self._layers if layer.training and layer.num_experts > 1]
        self._drawn, self._turn = drawn, 0
        if not drawn:
            return
        draws = torch.tensor([self.draw(layer.num_experts) for layer in drawn])  # [layers, views], on the CPU
        placed: dict[torch.device, torch.Tensor] = {}
        for index, layer in enumerate(drawn):
            device = layer.weight.device
            if device not in placed:
                placed[device] = _to_device(draws, device)
            layer.route = placed[device][index]

    def clear_routes(self) -> None:
        """After the forward: a layer called on its own afterwards draws for itself again."""
        for layer in self._drawn:
            layer.route = None
        self._drawn = []

    def take_turn(self, layer: nn.Module) -> None:
        """Eager forwards only: ``layer`` is the next one drawn for. Otherwise a layer ran out of module order,
        twice, or another was skipped, and the layers would get other experts than drawing for themselves gave."""
        turn = self._turn
        if turn >= len(self._drawn) or self._drawn[turn] is not layer:
            raise RuntimeError(
                "a mixture layer ran out of the order its experts were drawn in (module order, each routed layer "
                "once per forward of the model the router is attached to); call each mixture once per forward, "
                "in module order"
            )
        self._turn = turn + 1

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


def _to_device(draws: torch.Tensor, device: torch.device) -> torch.Tensor:
    """One copy per forward and device; on CUDA from pinned memory, so that it does not wait for the device."""
    if device.type == "cuda":
        return draws.pin_memory().to(device, non_blocking=True)
    return draws.to(device)
