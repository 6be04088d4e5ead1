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


NO_DECAY_RULES = ("modules", "names")
LIST_NO_DECAY = ("bias", "LayerNorm.weight")  # LiST src/trainer.py L462: by name, so lm_head.layer_norm decays


def _no_decay_ids_by_name(model: nn.Module) -> set[int]:
    """LiST's rule: parameters whose name contains "bias" or "LayerNorm.weight" (fidelity audit D-A5)."""
    return {id(p) for name, p in model.named_parameters() if any(part in name for part in LIST_NO_DECAY)}


def build_optimizer(
    model: nn.Module,
    params: list[nn.Parameter],
    lr: float,
    weight_decay: float,
    eps: float = 1e-8,
    decay_all=False,
    no_decay_rule: str = "modules",
):
    """AdamW (betas 0.9/0.999; eps 1e-8 as TrainingArguments, the official NLG code uses 1e-6) over the trainable
    parameters; `decay_all` also decays biases and LayerNorm weights, as the official NLG optimizer does;
    `no_decay_rule="names"` exempts by parameter name as LiST does (its LM head's layer_norm.weight decays)."""
    by_name = no_decay_rule == "names"
    no_decay = set() if decay_all else _no_decay_ids_by_name(model) if by_name else _no_decay_ids(model)
    groups = [
        {"params": [p for p in params if id(p) not in no_decay], "weight_decay": weight_decay},
        {"params": [p for p in params if id(p) in no_decay], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=lr, betas=(0.9, 0.999), eps=eps)


def build_scheduler(optimizer, total_steps: int, warmup_ratio: float, warmup_steps: int = 0):
    """Linear warmup (`warmup_steps` when > 0, as the NLG scripts, else ceil(total * ratio) as the NLU scripts),
    then linear decay to zero (HF `linear`)."""
    warmup = warmup_steps or math.ceil(total_steps * warmup_ratio)
    return get_linear_schedule_with_warmup(optimizer, warmup, total_steps)
