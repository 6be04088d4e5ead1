"""Bottleneck adapter (a mixture of them when M > 1) and the wrapper that puts it after a frozen module."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from .mixture import ExpertLinear
from .routing import Router

SHARE_MODES = ("up", "down", "none")


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
    """``h + up(gelu(down(h)))`` with exact GELU, no LayerNorm, no scaling (official ``ExpertSoup``); with
    ``linear=True`` and ``bias=False``, LiST's adapter ``h + up(down(h))`` (no activation, no biases).

    ``share`` names the projection kept as one module shared by all experts; the other has ``num_experts``.
    The official default shares the up-projection (reference §3).
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
        linear: bool = False,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if share not in SHARE_MODES:
            raise ValueError(f"share must be one of {SHARE_MODES}, got {share!r}")
        down_m = 1 if share == "down" else num_experts
        up_m = 1 if share == "up" else num_experts
        kw = {"router": router, "init_std": init_std, "device": device, "dtype": dtype, "bias": bias}
        self.router = router
        self.activation = nn.Identity() if linear else nn.GELU()
        self.down = ExpertLinear(hidden, adapter_dim, down_m, **kw)
        self.up = ExpertLinear(adapter_dim, hidden, up_m, **kw)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if not self.training and self.router.inference == "ensemble":
            return h + self._ensemble(h)
        return h + self.up(self.activation(self.down(h)))

    def _ensemble(self, h: torch.Tensor) -> torch.Tensor:
        """Mean over j of expert pair j's output; a shared side always uses its single module."""
        pairs = max(self.down.num_experts, self.up.num_experts)
        outs = []
        for j in range(pairs):
            d = j if self.down.num_experts > 1 else 0
            u = j if self.up.num_experts > 1 else 0
            outs.append(self.up(self.activation(self.down(h, expert=d)), expert=u))
        return torch.stack(outs).mean(0)


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
