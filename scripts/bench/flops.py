"""Model FLOPs of a training step and the utilisation they give against the card's peak (MFU).

A token costs 2 FLOPs per weight of every matmul it goes through in the forward pass. Backward computes the input
gradients of every matmul (2 more per weight) but weight gradients only for trained weights (2 more): a frozen
weight costs 4 per token, a trained one 6 (PaLM's 6N for full fine-tuning). A mixture counts one expert, the one a
view runs through. Attention's two sequence-by-sequence products add 4 x seq_len x hidden per token and layer
forward, x3 with backward. Embedding lookups are not matmuls and are not counted.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.pytorch_utils import Conv1D

from adamix_runner.adaptation import ExpertLinear

# Dense bf16/fp16 tensor-core peaks from the vendors' data sheets (SXM parts), in TFLOP/s.
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10G": 125.0}


def _matmul_weights(model: nn.Module) -> tuple[int, int]:
    """(frozen, trained) weights a token multiplies with, one expert per mixture."""
    frozen = trained = 0
    for module in model.modules():
        if isinstance(module, ExpertLinear):
            weight, count = module.weight, module.weight[0].numel()
        elif isinstance(module, nn.Linear | Conv1D):
            weight, count = module.weight, module.weight.numel()
        else:
            continue
        if weight.requires_grad:
            trained += count
        else:
            frozen += count
    return frozen, trained


def train_flops_per_token(model: nn.Module, seq_len: int) -> float:
    frozen, trained = _matmul_weights(model)
    config = model.config
    attention = 4 * config.num_hidden_layers * seq_len * config.hidden_size
    return 4 * frozen + 6 * trained + 3 * attention


def peak_tflops(device: str, override: float | None) -> float | None:
    """The card's dense half-precision peak: ``--peak-tflops`` when given, else looked up by name (None on CPU)."""
    if override:
        return override
    if not device.startswith("cuda"):
        return None
    name = torch.cuda.get_device_name(torch.device(device))
    return next((peak for key, peak in PEAK_TFLOPS.items() if key in name), None)
