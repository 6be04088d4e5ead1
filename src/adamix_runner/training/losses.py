"""Task loss and the symmetric-KL consistency loss of AdaMix (method reference §2).

The consistency term follows the official code exactly: float32, temperature 1, `batchmean`, and a stop-gradient
on the target side of each KL term, so each view is pulled towards the other and not the reverse.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _kl_to_detached(logits: Tensor, target_logits: Tensor) -> Tensor:
    """KL(softmax(target) ‖ softmax(logits)) per row (summed over the last dimension), no gradient through the
    target."""
    log_q = F.log_softmax(logits, dim=-1)
    return F.kl_div(log_q, F.softmax(target_logits.detach(), dim=-1), reduction="none").sum(-1)


def symmetric_kl(logits_a: Tensor, logits_b: Tensor, mask: Tensor | None = None) -> Tensor:
    """½[KL(b‖a) + KL(a‖b)] over the last dimension, averaged over rows (`batchmean`); with `mask` ([B, T] of 0/1),
    over the kept tokens only. Masking weights the rows instead of selecting them, so there is no host sync."""
    a, b = logits_a.float(), logits_b.float()
    per_row = 0.5 * (_kl_to_detached(a, b) + _kl_to_detached(b, a))
    if mask is None:
        return per_row.mean()
    weight = mask.to(per_row.dtype)
    return (per_row * weight).sum() / weight.sum().clamp(min=1)


def task_loss(logits: Tensor, labels: Tensor, num_labels: int, label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy for classification (optionally label-smoothed), MSE for one-logit regression (as Hugging
    Face's heads; smoothing has no meaning there)."""
    if num_labels == 1:
        return F.mse_loss(logits.float().squeeze(-1), labels.float())
    return F.cross_entropy(logits.float().view(-1, num_labels), labels.view(-1), label_smoothing=label_smoothing)


def adamix_loss(
    logits: Tensor,
    labels: Tensor,
    num_labels: int,
    consistency_weight: float,
    num_views: int,
    label_smoothing: float = 0.0,
) -> tuple[Tensor, dict[str, Tensor]]:
    """The training loss of one step and its detached parts (tensors, so no host sync).

    With two views, `logits` come from one forward over the duplicated batch ([2B, C]); as in the official code
    only the first view gets the task loss, and the two views are tied by the weighted symmetric KL.
    """
    first, second = split_views(logits, labels.shape[0], num_views)
    task = task_loss(first, labels, num_labels, label_smoothing)
    consistency = None if second is None else symmetric_kl(first, second)
    return combine(task, consistency, consistency_weight)


def split_views(logits: Tensor, batch_size: int, views: int) -> tuple[Tensor, Tensor | None]:
    """The first view's rows and the second's (None with one view) of logits from a forward over stacked views."""
    if views not in (1, 2):
        raise ValueError(f"num_views must be 1 or 2, got {views}")
    if logits.shape[0] != views * batch_size:
        raise ValueError(f"{views} view(s) need {views} x {batch_size} rows of logits, got {logits.shape[0]}")
    if views == 1:
        return logits, None
    first, second = logits.chunk(2)
    return first, second


def combine(task: Tensor, consistency: Tensor | None, weight: float) -> tuple[Tensor, dict[str, Tensor]]:
    """`task + weight x consistency` and its detached parts (tensors, so no host sync)."""
    if consistency is None:
        consistency = torch.zeros((), device=task.device)
        return task, {"task_loss": task.detach(), "consistency_loss": consistency}
    loss = task + weight * consistency
    return loss, {"task_loss": task.detach(), "consistency_loss": consistency.detach()}


def num_views(consistency_weight: float, num_labels: int) -> int:
    """Two stochastic views only when their KL can be non-zero (one-logit regression makes it exactly 0)."""
    return 2 if consistency_weight > 0 and num_labels > 1 else 1
