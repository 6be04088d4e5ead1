"""Prompt tuning (Lester et al., 2021), the variant used here: P trainable input embeddings in fixed slots.

The prompt pipeline renders P filler tokens at ``offset`` (after ``[CLS]``/``<s>`` for a masked LM, at the start
for a causal LM: :func:`soft_prompt_offset`); this layer wraps the word-embedding module and replaces the
embeddings of those P slots by its own vectors. The sequence keeps its length, so attention masks, position ids
and the mask position need no other change. The vectors start as copies of the embeddings of P vocabulary tokens
drawn at random (Lester et al.'s "sampled vocabulary" initialisation; torch's global RNG, seeded by the caller).
The backbone stays frozen; the task head trains with it, as with every method of this runner.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from .adapter import AdaptationLayer

MASKED_LM_TYPES = ("bert", "roberta", "xlm-roberta")


def soft_prompt_offset(model_type: str) -> int:
    """Where the soft prompt starts: after the leading special token of a masked LM, at 0 for a causal LM."""
    return 1 if model_type in MASKED_LM_TYPES else 0


class SoftPromptEmbedding(AdaptationLayer):
    """``embedding(ids)`` with positions ``[offset, offset + P)`` replaced by the trainable prompt [P, d]."""

    def __init__(self, base: nn.Embedding, length: int, offset: int) -> None:
        super().__init__()
        self.base = base
        self.offset = offset
        sampled = torch.randint(base.num_embeddings, (length,), device="cpu").to(base.weight.device)
        self.prompt = nn.Parameter(base.weight.detach()[sampled].clone())

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        embeds = self.base(input_ids)
        start, end = self.offset, self.offset + self.prompt.shape[0]
        prompt = self.prompt.to(embeds.dtype).expand(embeds.shape[0], -1, -1)
        return torch.cat([embeds[:, :start], prompt, embeds[:, end:]], dim=1)

    def adaptation_parameters(self) -> Iterator[tuple[str, nn.Parameter]]:
        yield "prompt", self.prompt

    def inference_numel(self) -> int:
        return self.prompt.numel()
