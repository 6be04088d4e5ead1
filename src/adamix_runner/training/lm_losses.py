"""Causal-LM losses for NLG: the completion's cross-entropy and AdaMix's token-level consistency (reference §2.2).

As the official GPT-2 code (NLG/src/model.py): the loss covers the completion tokens only (labels -100
elsewhere), label smoothing is `(1-ε)·NLL + ε·mean(-log p)` (what `F.cross_entropy(label_smoothing=ε)` computes),
averaged over the labelled tokens; the consistency term is the symmetric KL of the two views' token logits at
the same labelled positions, `batchmean` over those tokens, times a weight the official code hard-codes to 100.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch.nn.functional as F
from torch import Tensor

from adamix_runner.training.losses import combine, split_views, symmetric_kl

IGNORE = -100


def _shift(logits: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Logits at position t predict token t+1: drop the last logit and the first label."""
    return logits[:, :-1], labels[:, 1:]


def lm_loss(logits: Tensor, labels: Tensor, label_smoothing: float = 0.0) -> Tensor:
    """Mean cross-entropy over the labelled (next-)tokens; `labels` are input-aligned, -100 where unlabelled.
    A sum divided by the clamped count: 0 (not NaN) when nothing is labelled, and no host sync to find out."""
    logits, labels = _shift(logits, labels)
    total = F.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]),
        labels.reshape(-1),
        ignore_index=IGNORE,
        label_smoothing=label_smoothing,
        reduction="sum",
    )
    return total / (labels != IGNORE).sum().clamp(min=1)


def lm_adamix_loss(
    logits: Tensor,
    batch: Mapping[str, Tensor],
    views: int,
    consistency_weight: float,
    label_smoothing: float = 0.0,
) -> tuple[Tensor, dict[str, Tensor]]:
    """The loss of one step for `LoopSetup.loss`, and its detached parts.

    With two views, `logits` are [2B, T, V] from one forward over the duplicated batch: the LM loss is taken on
    the first view only, and the views are tied by `consistency_weight` × symmetric KL over the labelled tokens.
    """
    labels = batch["labels"]
    # float32 once: both terms read the views' logits
    first, second = split_views(logits.float(), labels.shape[0], views)
    task = lm_loss(first, labels, label_smoothing)
    consistency = None
    if second is not None:
        first_next, targets = _shift(first, labels)
        consistency = symmetric_kl(first_next, second[:, :-1], targets != IGNORE)
    return combine(task, consistency, consistency_weight)
