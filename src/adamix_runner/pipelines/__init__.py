"""What differs between task kinds: the model class, the tokenizer, the data loaders, the loss, the evaluation.

run.py tells the same story for every kind and asks `for_kind(kind)` for these pieces:
- `load_model(cfg, num_labels, *, on_meta=False, model_cfg=None)` and `load_tokenizer(cfg)`;
- `prepare(cfg, task, tokenizer, model, accelerator, folder) -> Prepared` (train loader, evaluation, loss, views).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

import torch

from adamix_runner.errors import UserError


@dataclass
class Prepared:
    train_loader: object
    evaluate: Callable[[], dict[str, float]]
    loss: Callable[[torch.Tensor, dict, int], tuple[torch.Tensor, dict]]
    num_views: int


def for_kind(kind: str) -> ModuleType:
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
