"""GLUE's metrics, computed with scikit-learn and scipy so that evaluation works offline.

The definitions follow the GLUE benchmark (and the `evaluate` "glue" metric): F1 is binary with class 1 as
the positive class (MRPC, QQP), Matthews correlation is CoLA's, Pearson and Spearman are STS-B's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import f1_score, matthews_corrcoef


def _accuracy(predictions: np.ndarray, references: np.ndarray) -> float:
    return float(np.mean(predictions == references))


def _f1(predictions: np.ndarray, references: np.ndarray) -> float:
    return float(f1_score(references, predictions, pos_label=1, average="binary", zero_division=0.0))


def _matthews(predictions: np.ndarray, references: np.ndarray) -> float:
    return float(matthews_corrcoef(references, predictions))


def _pearson(predictions: np.ndarray, references: np.ndarray) -> float:
    return float(pearsonr(predictions, references)[0])


def _spearman(predictions: np.ndarray, references: np.ndarray) -> float:
    return float(spearmanr(predictions, references)[0])


METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "accuracy": _accuracy,
    "f1": _f1,
    "matthews": _matthews,
    "pearson": _pearson,
    "spearman": _spearman,
}


def compute(names: Sequence[str], predictions: np.ndarray, references: np.ndarray) -> dict[str, float]:
    """Each named metric of `predictions` against `references`; unknown names fail before any is computed."""
    unknown = [name for name in names if name not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; known metrics: {', '.join(METRICS)}")
    predictions, references = np.asarray(predictions), np.asarray(references)
    if predictions.shape != references.shape:
        raise ValueError(f"predictions {predictions.shape} and references {references.shape} differ in shape")
    return {name: METRICS[name](predictions, references) for name in names}


def predictions_from_logits(logits: np.ndarray, num_labels: int, minimum: float | None = None) -> np.ndarray:
    """Class ids (argmax over the last axis), or the scores themselves for regression (num_labels == 1), clipped
    below at ``minimum`` when given (the official RoBERTa code clips STS-B scores at 0 at inference:
    ``torch.clip(logits, min=0)``, modeling_roberta.py L1285-1286, method reference §2.1)."""
    logits = np.asarray(logits)
    if num_labels == 1:
        scores = logits.reshape(-1)
        return scores if minimum is None else np.maximum(scores, minimum)
    return logits.argmax(axis=-1)
