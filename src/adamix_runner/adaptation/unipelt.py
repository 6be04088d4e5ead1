"""UniPELT (Mao et al., ACL 2022): adapter, prefix-tuning and LoRA in one model, each scaled by its own learned gate.

The submodules are the runner's own (:class:`.adapter.BottleneckAdapter`, :class:`.prefix.PrefixEncoder`,
:class:`.lora.LoRALayer`); this module adds only the gates and the three gated wrappers. A gate reads the input x
[B, T, d] of the submodule it scales and gives one scalar per example, ``mean_t sigmoid(W x_t + b)`` (padding
positions included, as the official code, which averages over dim 1 without a mask). Sources, official code
morningmoni/UniPELT at 2f2ecb7:

- adapter: adapter-transformers' ``pfeiffer`` config (``original_ln_before``, ``residual_before_ln``,
  ``original_ln_after``) around the whole FFN output block (``BertOutput``): with ``h = dropout(dense(x))`` and
  ``a`` the attention block's output, the adapter and its gate read ``z = LN(h + a)`` and the block returns
  ``LN(h + g(z) * up(act(down(z))) + a)``, the frozen pretrained LayerNorm applied twice
  (``modeling_bert.py`` L474-478, ``adapters/layer.py`` L125-138 and L371-374, ``adapters/modeling.py`` L103-104
  ``self.gate = nn.Linear(self.input_size, 1)``, L113-139);
- prefix: the layer's prefix keys and values times ``g(hidden_states)`` of that self-attention's input
  (``transformers/models/bert/modeling_bert.py`` ``BertSelfAttention``: ``self.prefix_gate = nn.Linear(hidden, 1)``
  and ``prefix_embed_k * gate``);
- LoRA: ``base(x) + g(x) * B A x`` on query and value, each with its own gate. The gate **replaces** LoRA's
  ``alpha / r`` scaling (``lora_layers.py`` L127-128, L166-171: ``self.scaling = torch.sigmoid(self.lora_gate(x))``),
  so the UniPELT config keeps ``lora_alpha = lora_rank`` (scaling 1) and the gate is the only scale.

Gates start as BERT's init (weight N(0, 0.02), bias 0; ``modeling.py`` L110-111), so every gate opens at about 0.5.
A gate depends on the input and cannot be folded into weights: inference keeps the gates, and #Param counts them
(d + 1 each).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from .adapter import AdaptationLayer, AdaptedModule, BottleneckAdapter
from .lora import LoRALayer, features_of
from .prefix import PrefixSelfAttention

GATE_INIT_STD = 0.02  # BERT's initializer_range, the official gates' init


class Gate(AdaptationLayer):
    """``mean_t sigmoid(W x_t + b)``: [B, T, d] -> [B, 1, 1], one scale per example."""

    def __init__(self, hidden: int, device: torch.device | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.linear = nn.Linear(hidden, 1, device=device, dtype=dtype)
        with torch.no_grad():
            nn.init.normal_(self.linear.weight, mean=0.0, std=GATE_INIT_STD)
            nn.init.zeros_(self.linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.linear(x)).mean(dim=1, keepdim=True)

    def adaptation_parameters(self) -> Iterator[tuple[str, nn.Parameter]]:
        yield from self.named_parameters()

    def inference_numel(self) -> int:
        return sum(p.numel() for p in self.parameters())


def gate_like(hidden: int, ref: torch.Tensor) -> Gate:
    return Gate(hidden, device=ref.device, dtype=ref.dtype)


class GatedAdaptedModule(AdaptedModule):
    """UniPELT's Pfeiffer adapter around a BERT/RoBERTa FFN output block ``base`` (dense, dropout, LayerNorm):
    ``LN(h + g(z) * adapter.delta(z) + a)`` with ``h = dropout(dense(x))``, ``z = LN(h + a)`` (module docstring);
    the gate declares its own parameters."""

    def __init__(self, base: nn.Module, adapter: BottleneckAdapter, gate: Gate) -> None:
        super().__init__(base, adapter)
        self.gate = gate

    def forward(self, hidden_states: torch.Tensor, input_tensor: torch.Tensor) -> torch.Tensor:
        out = self.base
        h = out.dropout(out.dense(hidden_states))
        z = out.LayerNorm(h + input_tensor)
        return out.LayerNorm(h + self.gate(z) * self.adapter.delta(z) + input_tensor)


class GatedLoRALayer(LoRALayer):
    """LoRA whose update is scaled by ``g(x)`` of the projection's input (and by ``alpha / r``, 1 in UniPELT)."""

    def __init__(self, base: nn.Module, *args, **kwargs) -> None:
        super().__init__(base, *args, **kwargs)
        self.gate = gate_like(features_of(base)[0], base.weight)

    def delta(self, x: torch.Tensor) -> torch.Tensor:
        return self.gate(x) * super().delta(x)


class GatedPrefixSelfAttention(PrefixSelfAttention):
    """Prefix self-attention whose prefix keys and values are scaled by ``g(hidden_states)``."""

    def __init__(self, base: nn.Module, encoder, layer: int) -> None:
        super().__init__(base, encoder, layer)
        self.gate = gate_like(encoder.hidden, encoder.embedding.weight)

    def prefix_scale(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.gate(hidden_states).unsqueeze(1)  # [B, 1, 1, 1] over (heads, prefix, head_dim)
