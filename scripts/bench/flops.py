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

from adamix_runner.tables.cost import matmul_weights

# Dense bf16/fp16 tensor-core peaks from the vendors' data sheets (SXM parts), in TFLOP/s.
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10G": 125.0}


def train_flops_per_token(model: nn.Module, seq_len: int) -> float:
    frozen, trained = matmul_weights(model, per_row=())  # the bench counts the head and pooler too
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
