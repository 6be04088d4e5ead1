"""What differs between task kinds: the model class, the tokenizer, the data loaders, the loss, the evaluation.

run.py tells the same story for every kind and asks `for_kind(kind)` for these pieces (the `Pipeline` protocol):
- `load_model(cfg, num_labels, *, on_meta=False, model_cfg=None)` and `load_tokenizer(cfg)`;
- `prepare(cfg, task, tokenizer, model, accelerator, folder) -> Prepared` (train loader, evaluation, loss, views).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from adamix_runner.errors import UserError


@dataclass
class Prepared:
    train_loader: object
    evaluate: Callable[[], dict[str, float]]
    loss: Callable[[torch.Tensor, dict, int], tuple[torch.Tensor, dict]]
    num_views: int


class Pipeline(Protocol):
    """What one task kind supplies (pipelines/classification.py, generation.py, prompt.py each fill it)."""

    def load_model(self, cfg, num_labels: int, *, on_meta: bool = False, model_cfg=None) -> Any: ...

    def load_tokenizer(self, cfg) -> Any: ...

    def prepare(self, cfg, task, tokenizer, model, accelerator, folder: Path) -> Prepared: ...


def seeded_evaluation(model, evaluate: Callable[[], dict[str, float]]) -> Callable[[], dict[str, float]]:
    """``evaluate`` that first restarts the model's eval-time routing stream (Router.restart_eval_stream), so that
    every evaluation of a run, and adamix-evaluate's random-seed0, draws the same experts."""
    from adamix_runner.adaptation.apply import ROUTER_ATTR

    def run() -> dict[str, float]:
        router = getattr(model, ROUTER_ATTR, None)
        if router is not None:
            router.restart_eval_stream()
        return evaluate()

    return run


def for_kind(kind: str) -> Pipeline:
    if kind == "generation":
        try:
            from adamix_runner.pipelines import generation
        except ImportError as error:
            raise UserError(
                f"text generation needs the NLG metrics ({error.name} is missing): pip install 'adamix-runner[nlg]'."
            ) from error
        return generation
    if kind == "prompt":
        from adamix_runner.pipelines import prompt

        return prompt
    from adamix_runner.pipelines import classification

    return classification
