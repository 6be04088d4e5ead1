"""Bottleneck adapter (a mixture of them when M > 1) and the wrapper that puts it after a frozen module."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial

import torch
from torch import nn
from torch.nn import functional as F

from .mixture import ExpertLinear
from .routing import Router

SHARE_MODES = ("up", "down", "none")
EXPERT_INITS = ("independent", "identical")  # official NLU / official NLG LoRA (reference §1.4, §5.1)
UP_INITS = ("normal", "zero")

# The bottleneck's nonlinearity. Official AdaMix: exact GELU in the NLU ExpertSoup, the tanh approximation in the
# NLG one (NLG/src/expert_soup.py, method reference §5.2); UniPELT's Pfeiffer adapter uses ReLU; LiST's is linear.
ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "gelu": F.gelu,
    "gelu_tanh": partial(F.gelu, approximate="tanh"),
    "relu": F.relu,
    "linear": lambda x: x,  # LiST's adapter (few-shot): no nonlinearity
}


class AdaptationLayer(nn.Module):
    """A module that adapts a frozen target and declares which of its parameters train.

    Freezing, counting, saving and merging read :meth:`adaptation_parameters` (one source of truth), never
    parameter names.
    """

    def adaptation_parameters(self) -> Iterator[tuple[str, nn.Parameter]]:
        raise NotImplementedError

    def inference_numel(self) -> int:
        """Parameters this layer contributes at inference once merged (the paper's #Param)."""
        raise NotImplementedError


class BottleneckAdapter(nn.Module):
    """``h + up(act(down(h)))``, no LayerNorm, no scaling (official ``ExpertSoup``); with ``activation="linear"`` and
    ``bias=False``, LiST's adapter ``h + up(down(h))`` (no activation, no biases).

    ``activation`` is a key of :data:`ACTIVATIONS`: exact GELU as the official NLU code, ``gelu_tanh`` as the
    official NLG code. ``share`` names the projection kept as one module shared by all experts; the other has
    ``num_experts``. The official default shares the up-projection (reference §3).

    ``expert_init="identical"`` starts every expert as a copy of the first (the official NLG LoRA's behaviour;
    the official NLU code draws each independently); ``up_init="zero"`` zeroes the up-projection, so the
    adapter starts as the exact identity. The draws are made either way, so the other weights do not change.
    """

    def __init__(
        self,
        hidden: int,
        adapter_dim: int,
        num_experts: int,
        share: str,
        router: Router,
        init_std: float = 0.02,
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
        expert_init: str = "independent",
        up_init: str = "normal",
        activation: str = "gelu",
        bias: bool = True,
    ) -> None:
        super().__init__()
        if share not in SHARE_MODES:
            raise ValueError(f"share must be one of {SHARE_MODES}, got {share!r}")
        if expert_init not in EXPERT_INITS or up_init not in UP_INITS:
            raise ValueError(f"expert_init must be in {EXPERT_INITS} and up_init in {UP_INITS}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {tuple(ACTIVATIONS)}, got {activation!r}")
        self.activation = activation
        self.act = ACTIVATIONS[activation]
        down_m = 1 if share == "down" else num_experts
        up_m = 1 if share == "up" else num_experts
        kw = {"router": router, "init_std": init_std, "device": device, "dtype": dtype, "bias": bias}
        self.router = router
        self.down = ExpertLinear(hidden, adapter_dim, down_m, **kw)
        self.up = ExpertLinear(adapter_dim, hidden, up_m, **kw)
        with torch.no_grad():
            if expert_init == "identical":
                for layer in (self.down, self.up):
                    layer.weight.copy_(layer.weight[:1].expand_as(layer.weight))
            if up_init == "zero":
                self.up.weight.zero_()

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.delta(h)

    def delta(self, h: torch.Tensor) -> torch.Tensor:
        """The residual branch ``up(act(down(h)))`` (the ensemble's mean of it in eval mode)."""
        if not self.training and self.router.inference == "ensemble":
            return self._ensemble(h)
        return self.up(self.act(self.down(h)))

    def _ensemble(self, h: torch.Tensor) -> torch.Tensor:
        """Mean over j of expert pair j's output; a shared side always uses its single module."""
        pairs = max(self.down.num_experts, self.up.num_experts)
        outs = []
        for j in range(pairs):
            d = j if self.down.num_experts > 1 else 0
            u = j if self.up.num_experts > 1 else 0
            outs.append(self.up(self.act(self.down(h, expert=d)), expert=u))
        return torch.stack(outs).mean(0)

    def extra_repr(self) -> str:
        return f"activation={self.activation}"


class AdaptedModule(AdaptationLayer):
    """``adapter(base(*args))``: the target stays frozen and unchanged; only the adapter trains.

    Type-agnostic, so it wraps BERT's ``output.dense`` Linear and GPT-2's ``mlp.c_proj`` Conv1D alike.
    """

    def __init__(self, base: nn.Module, adapter: BottleneckAdapter) -> None:
        super().__init__()
        self.base = base
        self.adapter = adapter

    def forward(self, *args, **kwargs) -> torch.Tensor:
        return self.adapter(self.base(*args, **kwargs))

    def adaptation_parameters(self) -> Iterator[tuple[str, nn.Parameter]]:
        yield from self.adapter.named_parameters(prefix="adapter")

    def inference_numel(self) -> int:
        return self.adapter.down.inference_numel() + self.adapter.up.inference_numel()
