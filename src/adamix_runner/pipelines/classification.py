"""Sequence classification and regression (GLUE, polarity, local files): encoder + head, metrics on logits."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader

from adamix_runner.evaluation.predict import evaluate
from adamix_runner.models.encoder import load_model as _load_model
from adamix_runner.models.encoder import load_tokenizer as _load_tokenizer
from adamix_runner.pipelines import Prepared, seeded_evaluation
from adamix_runner.tasks.encode import collator, encode
from adamix_runner.training.batching import make_train_loader
from adamix_runner.training.losses import adamix_loss, num_views

CONSISTENCY_WEIGHT = 1.0  # official NLU code: CE + 1.0 x symmetric KL on the logits


def load_model(cfg, num_labels: int, *, on_meta: bool = False, model_cfg=None):
    return _load_model(model_cfg or cfg.model, num_labels, on_meta=on_meta)


def load_tokenizer(cfg):
    return _load_tokenizer(cfg.model)


def _loaders(cfg, task, tokenizer, model):
    encoded = encode(task, tokenizer, cfg.data.max_seq_length)
    if getattr(model.config, "type_vocab_size", 2) < 2:
        encoded = encoded.remove_columns([c for c in ("token_type_ids",) if c in encoded["train"].column_names])
    pad = collator(tokenizer)
    train = cfg.train
    train_loader = make_train_loader(
        encoded["train"], train.batch_size, pad, train.group_by_length, train.num_workers, seed=cfg.seed
    )
    # Evaluation loaders keep the dataset order; they too own their generator, so they never touch the global RNG.
    own = {"collate_fn": pad, "generator": torch.Generator().manual_seed(cfg.seed)}
    evals = {s: DataLoader(encoded[s], train.eval_batch_size, **own) for s in task.eval_splits}
    return train_loader, evals


def prepare(cfg, task, tokenizer, model, accelerator, folder) -> Prepared:
    return class_logit_objective(cfg, task, model, accelerator, *_loaders(cfg, task, tokenizer, model))


def class_logit_objective(cfg, task, model, accelerator, train_loader, evals) -> Prepared:
    """Task loss + weighted consistency on class logits, scored by the task's metrics; the prompt pipeline's
    class logits (label words read by an LM head) take the same objective."""
    evals = {split: accelerator.prepare(loader) for split, loader in evals.items()}
    weight = CONSISTENCY_WEIGHT if cfg.peft.consistency_weight is None else cfg.peft.consistency_weight
    return Prepared(
        train_loader=train_loader,
        evaluate=seeded_evaluation(model, lambda: evaluate(model, evals, task, accelerator)),
        loss=lambda logits, batch, views: adamix_loss(
            logits, batch["labels"], task.num_labels, weight, views, cfg.train.label_smoothing
        ),
        num_views=num_views(weight, task.num_labels),
    )
