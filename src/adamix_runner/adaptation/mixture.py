"""ExpertLinear: M linear experts stored stacked, routed by index, merged by a mean.

Storing the experts as one ``weight`` [M, out, in] and one ``bias`` [M, out] makes routing an index, merging
a mean, and lets one forward send the two halves of a consistency batch to different experts.

It also reproduces the official optimizer semantics. The official code (torch 1.9) zeroes gradients rather
than setting them to None, so an expert that was not drawn in a step still has a zero gradient and AdamW
still applies momentum and weight decay to it. Here the unselected rows of the stacked parameter get a zero
gradient by construction, and DDP never sees an unused parameter.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .routing import Router


class ExpertLinear(nn.Module):
    """A linear projection with ``num_experts`` experts, routed by the shared :class:`Router`.

    Train mode: with M > 1, one expert per view per forward (drawn from ``router.generator``); with M == 1 no
    draw is made. ``route`` holds this forward's draws when the router made them before the model's forward
    (``adaptation.apply`` attaches it); a layer called on its own draws for itself. Eval mode follows
    ``router.inference``; ``ensemble`` is resolved by the adapter, and a lone linear layer's ensemble equals its
    merge, so it is served by the merged view here.

    ``bias=False`` gives a bias-free projection (LoRA factors); ``groups=g`` splits input and output into g
    blocks, block i of the output reading only block i of the input (weight [M, out, in / g]): the grouped
    LoRA B of GPT-2's fused ``c_attn`` (official ``conv1d(groups=2)``). ``init_std=None`` leaves the weight
    zero, for the caller to initialise.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        num_experts: int,
        router: Router,
        init_std: float | None = 0.02,
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
        bias: bool = True,
        groups: int = 1,
    ) -> None:
        super().__init__()
        if in_features % groups or out_features % groups:
            raise ValueError(f"in={in_features} and out={out_features} must be multiples of groups={groups}")
        self.in_features = in_features
        self.out_features = out_features
        self.groups = groups
        self.router = router
        shape = (num_experts, out_features, in_features // groups)
        self.weight = nn.Parameter(torch.zeros(shape, device=device, dtype=dtype))
        if bias:
            self.bias = nn.Parameter(torch.zeros(num_experts, out_features, device=device, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        if init_std is not None:
            # Official NLU init: every expert drawn independently N(0, std), bias 0 (reference §1.4).
            nn.init.normal_(self.weight, mean=0.0, std=init_std)
        self._merged: tuple[torch.Tensor, torch.Tensor | None] | None = None
        self.route: torch.Tensor | None = None  # [views] expert indices on the weight's device, set per forward

    @property
    def num_experts(self) -> int:
        return self.weight.shape[0]

    def inference_numel(self) -> int:
        """Parameters of one merged expert: what the paper's #Param counts."""
        bias = 0 if self.bias is None else self.bias.numel()
        return (self.weight.numel() + bias) // self.num_experts

    def expert(self, j: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.num_experts == 1:  # a view whose backward is a view too; indexing would allocate a zero gradient
            return self.weight.squeeze(0), None if self.bias is None else self.bias.squeeze(0)
        return self.weight[j], None if self.bias is None else self.bias[j]

    def _linear(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        if self.groups == 1:
            return F.linear(x, weight, bias)
        blocks = zip(x.chunk(self.groups, -1), weight.chunk(self.groups, 0), strict=True)
        out = torch.cat([F.linear(xi, wi) for xi, wi in blocks], dim=-1)
        return out if bias is None else out + bias

    def forward(self, x: torch.Tensor, expert: int | None = None) -> torch.Tensor:
        if expert is not None:
            return self._linear(x, *self.expert(expert))
        if self.num_experts == 1:
            return self._linear(x, *self.expert(0))
        if self.training:
            return self._routed(x)
        mode = self.router.inference
        if mode == "fixed":
            return self._linear(x, *self.expert(self.router.fixed_expert))
        if mode == "random":
            return self._per_row(x, self.router.draw_per_row(self.num_experts, x.shape[0]))
        return self._linear(x, *self.merged())

    def _routed(self, x: torch.Tensor) -> torch.Tensor:
        views = self.router.num_views
        if x.shape[0] % views:
            raise ValueError(f"batch dim {x.shape[0]} is not {views} equal stacked views")
        route = self.route
        if route is None:
            route = torch.tensor(self.router.draw(self.num_experts), device=self.weight.device)
        elif not torch.compiler.is_compiling():
            self.router.take_turn(self)
        # A tensor index, never .tolist(): no graph break and no host sync under torch.compile.
        weights = self.weight.index_select(0, route)
        biases = None if self.bias is None else self.bias.index_select(0, route)
        chunks = x.chunk(views, dim=0)
        outs = [self._linear(c, weights[v], None if biases is None else biases[v]) for v, c in enumerate(chunks)]
        return outs[0] if views == 1 else torch.cat(outs, dim=0)

    def _per_row(self, x: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        if x.device.type == "cuda":  # a pageable copy would wait for the device in every mixture layer
            indices = indices.pin_memory().to(x.device, non_blocking=True)
        indices = indices.to(x.device)
        blocks = zip(x.chunk(self.groups, -1), self.weight[indices].chunk(self.groups, 1), strict=True)
        out = torch.cat([torch.einsum("b...i,boi->b...o", xi, wi) for xi, wi in blocks], dim=-1)
        if self.bias is None:
            return out
        return out + self.bias[indices].view(x.shape[0], *([1] * (x.dim() - 2)), self.out_features)

    def merged(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Mean of the experts' weights and biases, cached only for gradient-free evaluation in eval mode.

        With autograd on, the mean is recomputed so that it stays differentiable and no stale graph is kept. In
        train mode it is never cached: the optimizer changes the experts in place between calls, so a mean cached
        by a no-grad call during training would outlive the next step. Every mode switch drops the cache.
        """
        if self.training or torch.is_grad_enabled():
            return self._mean()
        if self._merged is None:
            self._merged = self._mean()
        return self._merged

    def _mean(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.weight.mean(0), None if self.bias is None else self.bias.mean(0)

    @torch.no_grad()
    def merge_(self) -> None:
        """Collapse the experts in place into their mean: afterwards M == 1, a plain linear layer."""
        for name in ("weight", "bias"):
            old = getattr(self, name)
            if old is None:
                continue
            setattr(self, name, nn.Parameter(old.mean(0, keepdim=True), requires_grad=old.requires_grad))
        self._merged = None

    def train(self, mode: bool = True) -> ExpertLinear:
        self._merged = None
        return super().train(mode)

    def _apply(self, fn, recurse: bool = True):
        self._merged = None
        return super()._apply(fn, recurse)

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        self._merged = None
        super()._load_from_state_dict(*args, **kwargs)

    def extra_repr(self) -> str:
        extra = (", bias=False" if self.bias is None else "") + (f", groups={self.groups}" if self.groups > 1 else "")
        return f"in={self.in_features}, out={self.out_features}, experts={self.num_experts}{extra}"
