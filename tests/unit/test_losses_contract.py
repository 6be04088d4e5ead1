"""The loss helpers' contract beyond test_losses.py (survivors of `make mutate`, docs/TESTING.md): regression's
MSE over a batch, the parts reported with one view, the view checks' messages, and when a second view runs."""

from __future__ import annotations

import pytest
import torch

from adamix_runner.training.losses import adamix_loss, num_views, split_views, symmetric_kl, task_loss


def test_regression_is_the_mean_squared_error_over_the_batch():
    logits = torch.tensor([[1.0], [2.0], [4.0]])  # what a one-logit head returns: [B, 1]
    labels = torch.tensor([0.0, 2.0, 1.0])
    assert task_loss(logits, labels, num_labels=1).item() == pytest.approx((1 + 0 + 9) / 3)


def test_one_view_reports_its_task_loss_and_a_zero_consistency():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([0, 1])
    loss, parts = adamix_loss(logits, labels, num_labels=2, consistency_weight=1.0, num_views=1)
    assert set(parts) == {"task_loss", "consistency_loss"}
    assert parts["task_loss"].item() == pytest.approx(loss.item())
    assert parts["consistency_loss"].item() == 0.0


def test_the_view_checks_say_what_is_wrong():
    with pytest.raises(ValueError, match=r"^num_views must be 1 or 2, got 3$"):
        split_views(torch.zeros(6, 2), 2, 3)
    with pytest.raises(ValueError, match=r"^2 view\(s\) need 2 x 4 rows of logits, got 6$"):
        split_views(torch.zeros(6, 3), 4, 2)


@pytest.mark.parametrize(
    ("weight", "labels", "views"), [(1.0, 3, 2), (0.1, 2, 2), (0.0, 3, 1), (1.0, 1, 1), (-1.0, 3, 1)]
)
def test_a_second_view_runs_only_when_its_kl_can_count(weight, labels, views):
    assert num_views(weight, labels) == views


def test_a_mask_that_keeps_one_token_is_that_tokens_kl():
    a, b = torch.tensor([[[1.0, 0.0], [0.0, 3.0]]]), torch.tensor([[[0.0, 1.0], [2.0, 0.0]]])
    mask = torch.tensor([[0, 1]])
    assert symmetric_kl(a, b, mask).item() == pytest.approx(symmetric_kl(a[:, 1], b[:, 1]).item())
