"""Each metric pinned on a small example checked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from adamix_runner.evaluation.metrics import compute, predictions_from_logits


def test_accuracy_and_binary_f1():
    # TP = 2 (rows 0, 1), FP = 1 (row 3), FN = 1 (row 4): precision 2/3, recall 2/3, F1 2/3; 3 of 5 right.
    predictions = np.array([1, 1, 0, 1, 0])
    references = np.array([1, 1, 0, 0, 1])
    result = compute(["accuracy", "f1"], predictions, references)
    assert result == pytest.approx({"accuracy": 0.6, "f1": 2 / 3})
    assert compute(["accuracy"], np.array([0, 1, 1, 0]), np.array([0, 1, 1, 1]))["accuracy"] == 0.75


def test_matthews():
    # TP = 2, TN = 1, FP = 1, FN = 1: (2*1 - 1*1) / sqrt(3 * 3 * 2 * 2) = 1/6.
    result = compute(["matthews"], np.array([1, 1, 0, 1, 0]), np.array([1, 1, 0, 0, 1]))
    assert result["matthews"] == pytest.approx(1 / 6)


def test_pearson_and_spearman():
    predictions = np.array([1.0, 2.0, 3.0, 4.0])
    references = np.array([1.0, 2.0, 3.0, 10.0])
    # Spearman: the ranks agree exactly. Pearson: the deviations from the means, (-1.5, -.5, .5, 1.5) and
    # (-3, -2, -1, 6), give 14 / sqrt(5 * 50).
    result = compute(["pearson", "spearman"], predictions, references)
    assert result == pytest.approx({"pearson": 14 / np.sqrt(250), "spearman": 1.0})


def test_unknown_metric_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"'bleu'.*accuracy, f1, matthews, pearson, spearman"):
        compute(["accuracy", "bleu"], np.array([1]), np.array([1]))


def test_predictions_from_logits():
    logits = np.array([[0.1, 0.9], [2.0, -1.0]])
    assert predictions_from_logits(logits, 2).tolist() == [1, 0]
    assert predictions_from_logits(np.array([[0.5], [3.0]]), 1).tolist() == [0.5, 3.0]


def test_stsb_predictions_are_clipped_at_zero_as_the_official_roberta_code():
    logits = np.array([[-0.5], [2.0], [0.0]])
    assert predictions_from_logits(logits, 1, minimum=0.0).tolist() == [0.0, 2.0, 0.0]
    assert predictions_from_logits(logits, 1).tolist() == [-0.5, 2.0, 0.0]  # no floor unless the task sets one


def test_stsb_task_carries_the_floor_to_evaluation():
    from adamix_runner import tasks
    from tests.conftest import FIXTURES, compose_config

    cfg = compose_config("task=stsb", f"task.data_dir={FIXTURES / 'glue' / 'stsb'}")
    assert tasks.load(cfg.task, cfg.data).prediction_min == 0.0
    mrpc = compose_config("task=mrpc", f"task.data_dir={FIXTURES / 'glue' / 'mrpc'}")
    assert tasks.load(mrpc.task, mrpc.data).prediction_min is None
