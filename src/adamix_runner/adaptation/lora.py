"""LoRA and AdaMix-LoRA: ``base(x) + s * B(A(dropout(x)))`` with A and B stored as stacked experts.

One class serves both methods: plain LoRA is the mixture with one A and one B expert. The factors are
:class:`ExpertLinear` without bias, so routing (one draw per layer per forward, A and B drawn independently,
one draw per stacked view), merging (mean of A and mean of B separately, ``ΔW = s·B̄·Ā``) and the eval modes
are the adapters' own (method reference §5.1). Naming: A is the down factor [r, in], B the up factor
[out, r]; ``share="up"`` keeps one B (official ``--share_B 1``), ``share="down"`` one A.

Init follows loralib and the official AdamixMergedLinear: one A drawn with ``kaiming_uniform_(a=√5)``
and copied into every A expert (all experts start identical and diverge through routing), B zero.

GPT-2's fused ``c_attn`` (a Conv1D, out = 3d) gets LoRA on its Q and V thirds only, as loralib's
``MergedLinear(enable_lora=[True, False, True])``: A holds the Q and V factors stacked ([2r, in]) and B is
grouped (two blocks [d, r]: Q rows read the first r outputs of A, V rows the last r). BERT/RoBERTa have
separate ``query`` and ``value`` Linears, so each gets its own mixture and its own draws (the official code has
AdaMix-LoRA for GPT-2 only; NLU LoRA there is plain loralib on q and v).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import nn

from .adapter import AdaptationLayer
from .mixture import ExpertLinear
from .routing import Router


def features_of(base: nn.Module) -> tuple[int, int]:
    """(in, out) of an ``nn.Linear`` or a transformers ``Conv1D`` (weight [in, out])."""
    if isinstance(base, nn.Linear):
        return base.in_features, base.out_features
    if type(base).__name__ == "Conv1D":
        return base.weight.shape[0], base.weight.shape[1]
    raise TypeError(f"LoRA adapts nn.Linear or Conv1D, got {type(base).__name__}")


class LoRALayer(AdaptationLayer):
    """``base(x) + scaling * B(A(dropout(x)))`` added to the output ``slices`` (all of it when ``None``).

    ``slices`` is a tuple of (start, stop) output ranges, one LoRA block per range (GPT-2 ``c_attn``:
    ``((0, d), (2d, 3d))``). ``num_a`` / ``num_b`` are the numbers of A and B experts.
    """

    def __init__(
        self,
        base: nn.Module,
        rank: int,
        alpha: float,
        dropout: float,
        num_a: int,
        num_b: int,
        router: Router,
        slices: tuple[tuple[int, int], ...] | None = None,
    ) -> None:
        super().__init__()
        in_features, out_features = features_of(base)
        self.base = base
        self.router = router
        self.rank = rank
        self.alpha = alpha
        self.scaling = alpha / rank
        self.slices = slices
        groups = 1 if slices is None else len(slices)
        sizes = {stop - start for start, stop in slices or ((0, out_features),)}
        if len(sizes) != 1:
            raise ValueError(f"LoRA output slices must have equal sizes, got {slices}")
        ref = base.weight
        kw = {"router": router, "init_std": None, "device": ref.device, "dtype": ref.dtype, "bias": False}
        self.lora_A = ExpertLinear(in_features, rank * groups, num_a, **kw)
        self.lora_B = ExpertLinear(rank * groups, sizes.pop() * groups, num_b, groups=groups, **kw)
        self.lora_dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        with torch.no_grad():
            one = torch.empty(self.lora_A.weight.shape[1:], device=ref.device, dtype=ref.dtype)
            nn.init.kaiming_uniform_(one, a=math.sqrt(5))
            self.lora_A.weight.copy_(one.expand_as(self.lora_A.weight))

    def delta(self, x: torch.Tensor) -> torch.Tensor:
        """The LoRA update before it is placed into the output slices (``[..., groups * out_slice]``)."""
        x = self.lora_dropout(x)
        if not self.training and self.router.inference == "ensemble":
            pairs = max(self.lora_A.num_experts, self.lora_B.num_experts)
            outs = [
                self.lora_B(self.lora_A(x, expert=j % self.lora_A.num_experts), expert=j % self.lora_B.num_experts)
                for j in range(pairs)
            ]
            return torch.stack(outs).mean(0) * self.scaling
        return self.lora_B(self.lora_A(x)) * self.scaling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base(x)
        delta = self.delta(x).to(out.dtype)
        if self.slices is None:
            return out + delta
        pieces, at = [], 0
        for (start, stop), d in zip(self.slices, delta.chunk(len(self.slices), -1), strict=True):
            pieces += [out[..., at:start], out[..., start:stop] + d]
            at = stop
        pieces.append(out[..., at:])
        return torch.cat(pieces, dim=-1)

    @torch.no_grad()
    def merged_factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The experts' means as one plain LoRA: Ā [groups·r, in] and a dense B̄ [out_total, groups·r] whose block
        g maps slice g's rank rows into its output slice (zero elsewhere: the K rows of GPT-2's ``c_attn``)."""
        a, _ = self.lora_A.merged()
        b, _ = self.lora_B.merged()
        if self.slices is None:
            return a, b
        out_features, groups = features_of(self.base)[1], len(self.slices)
        full_b = torch.zeros(out_features, groups * self.rank, dtype=b.dtype, device=b.device)
        for g, ((start, stop), b_g) in enumerate(zip(self.slices, b.chunk(groups, 0), strict=True)):
            full_b[start:stop, g * self.rank : (g + 1) * self.rank] = b_g
        return a, full_b

    @torch.no_grad()
    def merged_weight_delta(self) -> torch.Tensor:
        """``s · B̄ · Ā`` as a dense [out_total, in] matrix (zero outside the slices), in nn.Linear layout."""
        a, b = self.merged_factors()
        return b @ a * self.scaling

    def adaptation_parameters(self) -> Iterator[tuple[str, nn.Parameter]]:
        yield from self.lora_A.named_parameters(prefix="lora_A")
        yield from self.lora_B.named_parameters(prefix="lora_B")

    def inference_numel(self) -> int:
        return self.lora_A.inference_numel() + self.lora_B.inference_numel()

    def extra_repr(self) -> str:
        return f"rank={self.rank}, alpha={self.alpha}, slices={self.slices}"


def lora_for(base: nn.Module, model_type: str, spec, router: Router, layer_type: type = LoRALayer) -> LoRALayer:
    """The LoRA layer of one target: the whole projection, or (preset ``qv``) GPT-2 ``c_attn``'s Q and V thirds."""
    num_a = 1 if spec.share == "down" else spec.num_experts
    num_b = 1 if spec.share == "up" else spec.num_experts
    slices = None
    if model_type == "gpt2" and spec.lora_targets == "qv":
        d = features_of(base)[1] // 3
        slices = ((0, d), (2 * d, 3 * d))
    return layer_type(base, spec.lora_rank, spec.lora_alpha, spec.lora_dropout, num_a, num_b, router, slices)


@torch.no_grad()
def share_initial_a(layers: list[LoRALayer]) -> None:
    """Copy the first layer's A experts into every layer, as the official NLG GPT-2, which deep-copies one block
    into all 24 (NLG/src/model.py L250-251; method reference §5.1): every layer starts from the same A."""
    first = layers[0].lora_A.weight
    for layer in layers[1:]:
        other = layer.lora_A.weight
        if other.shape != first.shape:
            raise ValueError(
                f"lora_shared_init needs equal A shapes, got {tuple(first.shape)} and {tuple(other.shape)}"
            )
        other.copy_(first)
