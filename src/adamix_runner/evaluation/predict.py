"""Run a model over the evaluation splits and score it with the task's metrics."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from adamix_runner.evaluation.metrics import compute, predictions_from_logits
from adamix_runner.training.losses import task_loss


@torch.no_grad()
def split_logits(model, loader, accelerator) -> tuple[np.ndarray, np.ndarray]:
    """All logits and labels of one split, gathered across processes (padding duplicates dropped)."""
    logits_parts, label_parts = [], []
    for batch in loader:
        inputs = {key: value for key, value in batch.items() if key != "labels"}
        logits = model(**inputs).logits.float()
        logits, labels = accelerator.gather_for_metrics((logits, batch["labels"]))
        logits_parts.append(logits.cpu())
        label_parts.append(labels.cpu())
    return torch.cat(logits_parts).numpy(), torch.cat(label_parts).numpy()


def evaluate(model, loaders: Mapping[str, object], task, accelerator) -> dict[str, float]:
    """`{"<split>/<metric>": value}` for every eval split, plus `<split>/loss`; leaves the model in eval mode."""
    model.eval()
    results: dict[str, float] = {}
    for split, loader in loaders.items():
        logits, labels = split_logits(model, loader, accelerator)
        loss = task_loss(torch.from_numpy(logits), torch.from_numpy(labels), task.num_labels)
        results[f"{split}/loss"] = float(loss)
        predictions = predictions_from_logits(logits, task.num_labels, task.prediction_min)
        for name, value in compute(task.metrics, predictions, labels).items():
            results[f"{split}/{name}"] = value
    return results
