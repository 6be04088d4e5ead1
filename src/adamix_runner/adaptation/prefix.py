"""Prefix-tuning (Li & Liang, 2021) for BERT/RoBERTa self-attention, with the reparameterisation MLP.

A prefix embedding [P, d] goes through ``Linear(d, h) -> tanh -> Linear(h, 2·L·d)``; rows ``[2i·d, (2i+1)·d)``
of the output are layer i's key prefix and ``[(2i+1)·d, (2i+2)·d)`` its value prefix (Li & Liang's
``view(P, 2L, H, d/H)`` then ``split(2)``). Each wrapped self-attention computes its query/key/value as
transformers 5 ``BertSelfAttention`` does, prepends the P prefix keys/values, extends the additive (eager) or
boolean (sdpa) mask with P always-visible columns, and calls the same attention interface.

The MLP runs once per model forward, when layer 0 asks for its prefix; the later layers read their slices of that
output (per-layer slices of the last weight would each cost a weight-sized zero gradient). Inference: only the
MLP's output, the 2·L·P·d prefix keys/values, is used. The MLP stays in the saved adaptation state so that a
saved folder reloads into a freshly applied model; ``#Param`` counts the 2·L·P·d prefix (what the paper's
prefix-tuning row counts at inference).

Initialisation as in UniPELT's code, whose prefix modules live in ``BertEncoder`` and so get BERT's
``init_weights`` (``modeling_bert.py`` L580-586, L795-809, L943): embedding and Linear weights N(0, the backbone's
``initializer_range``, 0.02), biases 0 (PyTorch's defaults, N(0, 1) for the embedding, made initial prefixes ~50x
larger: fidelity audit D-B2).

GPT-2 is refused: its causal attention builds the mask (or sets ``is_causal``) for a key length equal to the
query length, the KV cache interplays with generation, and GPT-2 LM support is not there yet; prepending keys
cleanly needs its own causal-mask construction, so it is not offered rather than half done.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.models.bert.modeling_bert import eager_attention_forward

from .adapter import AdaptationLayer


class PrefixEncoder(AdaptationLayer):
    """The per-model prefix generator: embedding [P, d] -> MLP -> [L, 2, P, d] key/value prefixes."""

    def __init__(
        self,
        num_layers: int,
        hidden: int,
        prefix_length: int,
        mlp_hidden: int,
        init_std: float = 0.02,
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.num_layers, self.hidden, self.prefix_length = num_layers, hidden, prefix_length
        kw = {"device": device, "dtype": dtype}
        self.embedding = nn.Embedding(prefix_length, hidden, **kw)
        self.mlp = nn.Sequential(
            nn.Linear(hidden, mlp_hidden, **kw), nn.Tanh(), nn.Linear(mlp_hidden, 2 * num_layers * hidden, **kw)
        )
        with torch.no_grad():  # BERT's init_weights (module docstring), not PyTorch's N(0, 1) / kaiming defaults
            nn.init.normal_(self.embedding.weight, std=init_std)
            for linear in (self.mlp[0], self.mlp[2]):
                nn.init.normal_(linear.weight, std=init_std)
                nn.init.zeros_(linear.bias)
        self._prefixes: torch.Tensor | None = None  # this forward's [P, L, 2, d], computed at layer 0

    def layer_prefix(self, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Layer ``layer``'s key and value prefixes, each [P, d]; layer 0 (first in every forward) runs the MLP."""
        if layer == 0 or self._prefixes is None:
            out = self.mlp(self.embedding.weight)
            self._prefixes = out.view(self.prefix_length, self.num_layers, 2, self.hidden)
        return self._prefixes[:, layer, 0], self._prefixes[:, layer, 1]

    def adaptation_parameters(self) -> Iterator[tuple[str, nn.Parameter]]:
        yield from self.named_parameters()

    def inference_numel(self) -> int:
        return 2 * self.num_layers * self.prefix_length * self.hidden


class PrefixSelfAttention(nn.Module):
    """A BERT/RoBERTa self-attention whose keys and values start with layer ``layer``'s prefixes."""

    def __init__(self, base: nn.Module, encoder: PrefixEncoder, layer: int) -> None:
        super().__init__()
        self.base = base
        self.layer = layer
        object.__setattr__(self, "encoder", encoder)  # shared, registered once on the model: not a child here

    def prefix_scale(self, hidden_states: torch.Tensor) -> torch.Tensor | None:
        """A per-example factor [B, 1, 1, 1] on the prefix keys and values; none here (UniPELT's gate sets one)."""
        return None

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        cache=None,
        encoder_hidden_states: torch.Tensor | None = None,
        **kwargs,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        base = self.base
        if cache is not None or encoder_hidden_states is not None:
            raise ValueError("prefix-tuning supports encoder self-attention only (no cache, no cross-attention)")
        batch, length = hidden_states.shape[:2]
        shape = (batch, length, -1, base.attention_head_size)
        query = base.query(hidden_states).view(shape).transpose(1, 2)
        key = base.key(hidden_states).view(shape).transpose(1, 2)
        value = base.value(hidden_states).view(shape).transpose(1, 2)
        pk, pv = (
            p.to(key.dtype).view(1, -1, base.num_attention_heads, base.attention_head_size).transpose(1, 2)
            for p in self.encoder.layer_prefix(self.layer)
        )
        scale = self.prefix_scale(hidden_states)
        if scale is not None:
            pk, pv = pk * scale, pv * scale
        key = torch.cat([pk.expand(batch, -1, -1, -1), key], dim=2)
        value = torch.cat([pv.expand(batch, -1, -1, -1), value], dim=2)
        attention_mask = _extend_mask(attention_mask, self.encoder.prefix_length)
        interface = ALL_ATTENTION_FUNCTIONS.get_interface(base.config._attn_implementation, eager_attention_forward)
        out, weights = interface(
            base,
            query,
            key,
            value,
            attention_mask,
            dropout=0.0 if not self.training else base.dropout.p,
            scaling=base.scaling,
            **kwargs,
        )
        return out.reshape(batch, length, -1).contiguous(), weights


def _extend_mask(mask: torch.Tensor | None, prefix_length: int) -> torch.Tensor | None:
    """Prepend ``prefix_length`` visible key columns to a 4-D boolean (sdpa) or additive (eager) mask."""
    if mask is None:
        return None
    if mask.dim() != 4:
        raise ValueError(
            f"prefix-tuning needs a 4-D attention mask (eager or sdpa attention), got shape {tuple(mask.shape)}"
        )
    visible = True if mask.dtype == torch.bool else 0.0
    pad = torch.full((*mask.shape[:3], prefix_length), visible, dtype=mask.dtype, device=mask.device)
    return torch.cat([pad, mask], dim=-1)
