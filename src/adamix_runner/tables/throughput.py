"""The FLOP rate PLAN divides a cell's FLOPs by: measured when a bench file matches, else a stated default.

Measured: scripts/bench.py (or scripts/gpu_check.sh) writes outputs/bench/<backbone>-<device>-<dtype>-<time>.json
with the achieved model TFLOP/s of each training variant. A cell uses the newest file of its backbone, device kind
and precision (bf16/fp16 match their own; fp32 matches a run with train.mixed_precision=no only where the run
allows TF32, which the bench's fp32 path uses; on the CPU fp32 is fp32), and the variant that trains like it: full
fine-tuning, the fused two-view AdaMix step, or the single adapter for every other method.
Otherwise a stated default per device kind and precision:
- gpu: an A100 SXM's dense peak at 40% model FLOPs utilisation: bf16/fp16 312 TFLOP/s -> 125, TF32 156 -> 62,
  fp32 (TF32 off, PyTorch's default) 19.5 -> 7.8;
- cpu: 65.5 GFLOP/s, measured on this project's 2-core machine: a MiniLM batch of 32 polarity sentences trains
  one adapter in ~1.15 s and holds 1,697 tokens with dynamic padding (docs/PERFORMANCE.md), 1,476 tokens/s x
  44.4 MFLOP per token (cost.py: 4 x 10.6M frozen + 6 x 74k trained weights + attention at 53 tokens); any
  precision.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

GPU_PEAKS = {"bf16": 312e12, "fp16": 312e12, "tf32": 156e12, "fp32": 19.5e12}  # A100 SXM dense, data sheet
GPU_MFU = 0.4
CPU_FLOPS = 1476 * 44_375_040  # 65.5 GFLOP/s, see the module docstring
BENCH_DEVICE = {"gpu": "cuda", "cpu": "cpu"}
VARIANTS = {"full": "full fine-tuning", "two views": "AdaMix, fused 2B consistency", "other": "single adapter"}


@dataclass(frozen=True)
class Rate:
    flops_per_s: float
    source: str


def precision(cfg: DictConfig) -> str:
    """What a run's matmuls run in: bf16 | fp16 (autocast), tf32 (fp32 with train.allow_tf32), or fp32."""
    mixed = str(cfg.train.mixed_precision)
    if mixed in ("bf16", "fp16"):
        return mixed
    return "tf32" if OmegaConf.select(cfg, "train.allow_tf32", default=False) else "fp32"


def variant(cfg: DictConfig, views: int) -> str:
    if cfg.peft.method == "full":
        return VARIANTS["full"]
    return VARIANTS["two views" if views == 2 else "other"]


def _bench_dtypes(device: str, run_precision: str) -> tuple[str, ...]:
    if device == "cpu":
        return ("fp32",) if run_precision in ("fp32", "tf32") else (run_precision,)
    return {"bf16": ("bf16",), "fp16": ("fp16",), "tf32": ("fp32",)}.get(run_precision, ())


def bench_file(model: str, device: str, run_precision: str, name: str, bench_dir: Path) -> Path | None:
    """The newest bench file (by the time stamp in its name) of this backbone, device and precision that measured
    the variant `name`."""
    if not bench_dir.is_dir():
        return None
    found = []
    for dtype in _bench_dtypes(device, run_precision):
        for path in bench_dir.glob(f"{model}-{BENCH_DEVICE[device]}-{dtype}-*.json"):
            tflops = json.loads(path.read_text()).get("train", {}).get("model_tflops", {})
            if tflops.get(name):
                found.append((path.stem.rsplit("-", 2)[-2:], path))
    return max(found)[1] if found else None


def rate(cfg: DictConfig, device: str, views: int, bench_dir: Path) -> Rate:
    """The FLOP/s one run of `cfg` trains at on `device` (gpu | cpu)."""
    run_precision = precision(cfg)
    name = variant(cfg, views)
    path = bench_file(str(cfg.model.name), device, run_precision, name, bench_dir)
    if path is not None:
        bench = json.loads(path.read_text())
        tflops = bench["train"]["model_tflops"][name]
        options = bench.get("options", {})
        shape = f"batch {options.get('batch')} x {options.get('seq_len')}"
        shown = f"{tflops:.1f} TFLOP/s" if tflops >= 1 else f"{tflops * 1e3:.3g} GFLOP/s"
        return Rate(tflops * 1e12, f"measured {shown}: {path} ({name}, {shape})")
    if device == "cpu":
        return Rate(CPU_FLOPS, "default 65.5 GFLOP/s: measured on the project's 2-core CPU (MiniLM adapter training)")
    peak = GPU_PEAKS[run_precision]
    effective = peak * GPU_MFU
    return Rate(
        effective, f"default {effective / 1e12:.1f} TFLOP/s: A100 {run_precision} peak {peak / 1e12:g} at 40% MFU"
    )
