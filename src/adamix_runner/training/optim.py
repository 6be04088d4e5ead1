"""AdamW with the official weight-decay grouping and the linear warmup/decay schedule."""

from __future__ import annotations

import math

import torch
from torch import nn
from transformers import get_linear_schedule_with_warmup


def _no_decay_ids(model: nn.Module) -> set[int]:
    """Biases and LayerNorm weights, as HF Trainer groups them (official scripts: --weight_decay 0.1)."""
    ids = set()
    for module in model.modules():
        is_norm = isinstance(module, nn.LayerNorm)
        for name, param in module.named_parameters(recurse=False):
            if is_norm or name == "bias":
                ids.add(id(param))
    return ids


def build_optimizer(model: nn.Module, params: list[nn.Parameter], lr: float, weight_decay: float):
    """AdamW (betas 0.9/0.999, eps 1e-8: TrainingArguments defaults) over the trainable parameters."""
    no_decay = _no_decay_ids(model)
    groups = [
        {"params": [p for p in params if id(p) not in no_decay], "weight_decay": weight_decay},
        {"params": [p for p in params if id(p) in no_decay], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=lr, betas=(0.9, 0.999), eps=1e-8)


def build_scheduler(optimizer, total_steps: int, warmup_ratio: float):
    """Linear warmup for ceil(total * ratio) steps, then linear decay to zero (HF `linear`)."""
    warmup = math.ceil(total_steps * warmup_ratio)
    return get_linear_schedule_with_warmup(optimizer, warmup, total_steps)
