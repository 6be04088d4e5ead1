"""Tokens per padded row for PLAN: measured on the data when it is on this machine, else stated, else the cap.

In the order PLAN tries them:
- measured: the task reads local files (task.data_dir, task.data_files, a local family) and is a classification
  task: its training split is tokenized as the run would, and a row costs the expected longest row of a random
  batch (dynamic padding; cost.expected_batch_max), or the mean length with train.group_by_length;
- stated: the table's `token_length` for the task (`value`, `source`), as the declaration gives it;
- cap: data.max_seq_length, an upper bound under dynamic padding.
Hub data sets are never read here (PLAN downloads nothing).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache

from omegaconf import DictConfig, OmegaConf

from adamix_runner.errors import UserError
from adamix_runner.tables.cost import expected_batch_max

LOCAL_FAMILIES = ("local", "polarity")


@dataclass(frozen=True)
class RowTokens:
    train: float  # tokens per padded training row
    eval: float  # tokens per padded evaluation row
    how: str  # measured | stated | cap
    note: str


def _is_local(cfg: DictConfig) -> bool:
    files = cfg.task.get("data_files") or {}
    return bool(cfg.task.data_dir) or any(files.values()) or cfg.task.family in LOCAL_FAMILIES


def row_tokens(cfg: DictConfig, decl: DictConfig, task: str) -> RowTokens:
    from adamix_runner import tasks

    cap = int(cfg.data.max_seq_length)
    if _is_local(cfg) and tasks.kind(cfg.task) == "classification":
        lengths = _measured(_key(cfg))
        if lengths:
            width = _width(lengths, cfg.train.batch_size, cfg.train.group_by_length)
            eval_width = _width(lengths, cfg.train.eval_batch_size, False)
            return RowTokens(
                width, eval_width, "measured", f"measured on the local training split ({len(lengths)} rows)"
            )
    stated = (decl.get("token_length") or {}).get(task)
    if stated is not None:
        return RowTokens(float(stated.value), float(stated.value), "stated", f"stated: {stated.source}")
    return RowTokens(float(cap), float(cap), "cap", f"cap: data.max_seq_length={cap}, an upper bound")


def _width(lengths: list[int], batch: int, grouped: bool) -> float:
    return sum(lengths) / len(lengths) if grouped else expected_batch_max(lengths, batch)


def _key(cfg: DictConfig) -> str:
    return json.dumps(
        {k: OmegaConf.to_container(cfg[k], resolve=True) for k in ("task", "data", "model")}, sort_keys=True
    )


@cache
def _measured(key: str) -> tuple[int, ...] | None:
    """The token length of every training row, or None when the data or tokenizer cannot be read here."""
    from adamix_runner import tasks
    from adamix_runner.models.encoder import load_tokenizer
    from adamix_runner.tasks.encode import encode
    from adamix_runner.training.batching import token_lengths

    cfg = OmegaConf.create(json.loads(key))
    try:
        task = tasks.load(cfg.task, cfg.data)
        encoded = encode(task, load_tokenizer(cfg.model), cfg.data.max_seq_length)
    except (OSError, UserError, ValueError, ImportError):
        return None
    return tuple(token_lengths(encoded["train"]))
