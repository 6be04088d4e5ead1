"""The training throughput (tokens/s) that PLAN divides token counts by, and where the number comes from.

Measured when the benchmark has run on this backbone and device: scripts/bench.py writes
outputs/bench/<backbone>-<device>-<dtype>-<time>.json, whose "single adapter" samples/s times its sequence
length is the tokens/s of one training pass (the newest file wins). Otherwise a stated default: 6 FLOPs per
non-embedding parameter per token (forward + backward; attention scores not counted) at an effective rate per
device kind:
- gpu: 125 TFLOP/s, assumed: an A100's bf16 peak (312 TFLOP/s) at 40% model FLOPs utilisation;
- cpu: 94 GFLOP/s, measured on this project's 2-core machine: a MiniLM batch of 32 polarity sentences trains
  one adapter in ~1.15 s (coord real-recipe) and holds 1,697 tokens with dynamic padding (docs/PERFORMANCE.md),
  1,476 tokens/s x 6 x 10.6M non-embedding parameters.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

DEFAULT_FLOPS = {
    "gpu": (125e12, "assumed 125 TFLOP/s: A100 bf16 peak at 40% MFU"),
    "cpu": (94e9, "94 GFLOP/s measured on the project's 2-core CPU (MiniLM adapter training)"),
}
BENCH_DEVICE = {"gpu": "cuda", "cpu": "cpu"}


@dataclass(frozen=True)
class Throughput:
    tokens_per_s: float
    source: str


def flops_per_token(architecture: DictConfig) -> float:
    """6 x non-embedding parameters: per layer 4 d^2 (attention projections) + 2 d ff (feed-forward)."""
    arch = dict(architecture)
    hidden = arch.get("hidden_size", arch.get("n_embd"))
    layers = arch.get("num_hidden_layers", arch.get("n_layer"))
    ffn = arch.get("intermediate_size", arch.get("n_inner")) or 4 * hidden
    return 6.0 * layers * (4 * hidden * hidden + 2 * hidden * ffn)


def _bench_file(model: str, device: str, bench_dir: Path) -> Path | None:
    found = sorted(bench_dir.glob(f"{model}-{BENCH_DEVICE[device]}*-*.json")) if bench_dir.is_dir() else []
    usable = [
        path
        for path in found
        if "single adapter" in json.loads(path.read_text()).get("train", {}).get("samples_per_s", {})
    ]
    return usable[-1] if usable else None


def throughput(model_cfg: DictConfig, device: str, bench_dir: Path) -> Throughput:
    """Tokens/s of one training pass of `model_cfg` on `device` (gpu | cpu), measured or by the stated default."""
    path = _bench_file(model_cfg.name, device, bench_dir)
    if path is not None:
        bench = json.loads(path.read_text())
        options = bench["options"]
        rate = bench["train"]["samples_per_s"]["single adapter"] * options["seq_len"]
        where = (
            f"measured: {path} (single adapter, batch {options['batch']} x {options['seq_len']}, {options['dtype']})"
        )
        return Throughput(rate, where)
    flops, why = DEFAULT_FLOPS[device]
    per_token = flops_per_token(model_cfg.architecture)
    return Throughput(flops / per_token, f"default: {why}, {per_token / 1e9:.3g} GFLOP per token for {model_cfg.name}")
