"""The consistency loss pinned against its definition (method reference §2) and a value computed by hand."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from adamix_runner.training.losses import adamix_loss, symmetric_kl, task_loss


def _kl(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """KL(p ‖ q) per row, from the textbook formula."""
    return (p * (p.log() - q.log())).sum(-1)


def test_symmetric_and_zero_for_equal_logits():
    torch.manual_seed(0)
    a, b = torch.randn(4, 3), torch.randn(4, 3)
    assert symmetric_kl(a, b) == pytest.approx(symmetric_kl(b, a).item())
    assert symmetric_kl(a, a).item() == pytest.approx(0.0, abs=1e-7)


def test_exactly_zero_for_one_logit_regression():
    a, b = torch.randn(5, 1), torch.randn(5, 1) * 10
    assert symmetric_kl(a, b).item() == 0.0


def test_hand_computed_value():
    # Row 0: p = softmax(0, ln 3) = (1/4, 3/4), q = (1/2, 1/2). Row 1: identical logits, KL 0.
    a = torch.tensor([[0.0, math.log(3.0)], [1.0, 2.0]])
    b = torch.tensor([[0.0, 0.0], [1.0, 2.0]])
    kl_pq = 0.25 * math.log(0.5) + 0.75 * math.log(1.5)
    kl_qp = 0.5 * math.log(2.0) + 0.5 * math.log(2.0 / 3.0)
    expected = 0.5 * (kl_pq + kl_qp) / 2  # batchmean over the two rows
    assert symmetric_kl(a, b).item() == pytest.approx(expected, rel=1e-6)


def test_gradient_flows_only_through_the_non_detached_side():
    torch.manual_seed(1)
    a = torch.randn(3, 4, requires_grad=True)
    b = torch.randn(3, 4, requires_grad=True)
    symmetric_kl(a, b).backward()
    # d/da of ½ KL(softmax(b) ‖ softmax(a)) with b constant, batchmean over 3 rows; the other term, where a is
    # the detached target, contributes nothing to a's gradient (and symmetrically for b).
    ref_a = a.detach().clone().requires_grad_(True)
    (0.5 * _kl(F.softmax(b.detach(), -1), F.softmax(ref_a, -1)).mean()).backward()
    ref_b = b.detach().clone().requires_grad_(True)
    (0.5 * _kl(F.softmax(a.detach(), -1), F.softmax(ref_b, -1)).mean()).backward()
    torch.testing.assert_close(a.grad, ref_a.grad)
    torch.testing.assert_close(b.grad, ref_b.grad)


def test_computed_in_float32():
    a, b = torch.randn(2, 3).half(), torch.randn(2, 3).half()
    assert symmetric_kl(a, b).dtype == torch.float32


def test_mask_equals_unmasked_on_kept_tokens():
    torch.manual_seed(2)
    a, b = torch.randn(2, 5, 7), torch.randn(2, 5, 7)
    mask = torch.tensor([[1, 1, 0, 1, 0], [0, 1, 1, 0, 0]])
    keep = mask.bool()
    torch.testing.assert_close(symmetric_kl(a, b, mask), symmetric_kl(a[keep], b[keep]))
    assert symmetric_kl(a, b, torch.zeros(2, 5)).item() == 0.0


def test_task_loss_classification_and_regression():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([0, 1])
    torch.testing.assert_close(task_loss(logits, labels, 2), F.cross_entropy(logits, labels))
    predictions = torch.tensor([[1.0], [3.0]])
    assert task_loss(predictions, torch.tensor([2.0, 2.0]), 1).item() == pytest.approx(1.0)


def test_train_label_smoothing_reaches_the_classification_loss():
    logits, labels = torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 1])
    # ε = 0.1 over 2 classes: (1 - ε/2)·NLL(label) + ε/2·NLL(other)
    logp = F.log_softmax(logits, -1)
    by_hand = -(0.95 * logp[[0, 1], [0, 1]] + 0.05 * logp[[0, 1], [1, 0]]).mean()
    loss, _ = adamix_loss(logits, labels, 2, consistency_weight=1.0, num_views=1, label_smoothing=0.1)
    assert loss.item() == pytest.approx(by_hand.item(), rel=1e-6)


def test_adamix_loss_two_views_is_ce_on_first_view_plus_weighted_kl():
    torch.manual_seed(3)
    logits = torch.randn(6, 3, requires_grad=True)
    labels = torch.tensor([0, 2, 1])
    loss, parts = adamix_loss(logits, labels, num_labels=3, consistency_weight=0.7, num_views=2)
    first, second = logits[:3], logits[3:]
    expected = F.cross_entropy(first, labels) + 0.7 * symmetric_kl(first, second)
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(parts["task_loss"], F.cross_entropy(first, labels).detach())
    torch.testing.assert_close(parts["consistency_loss"], symmetric_kl(first, second).detach())
    assert not parts["task_loss"].requires_grad and not parts["consistency_loss"].requires_grad
    loss.backward()
    assert logits.grad[3:].abs().sum() > 0  # the second view learns through the KL term


def test_adamix_loss_one_view_is_the_task_loss():
    logits, labels = torch.randn(4, 2), torch.tensor([0, 1, 1, 0])
    loss, parts = adamix_loss(logits, labels, num_labels=2, consistency_weight=1.0, num_views=1)
    torch.testing.assert_close(loss, F.cross_entropy(logits, labels))
    assert parts["consistency_loss"].item() == 0.0


def test_adamix_loss_rejects_mismatched_views():
    with pytest.raises(ValueError, match="rows of logits"):
        adamix_loss(torch.randn(4, 2), torch.tensor([0, 1, 1, 0]), 2, 1.0, num_views=2)
