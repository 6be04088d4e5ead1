"""What a run executes on: precision checks against the device, TF32, the distributed environment of a submitit job,
and the `runtime` record of results.json (what actually ran, which the table report's recipe column reads).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import torch

from adamix_runner.errors import UserError

DISTRIBUTED_KEYS = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def check_precision(mixed_precision: str, on_cpu: bool) -> None:
    """Refuse a precision the device cannot honour, before anything loads. Accelerate would run fp16 on the CPU
    as fp32 (and the run would be recorded as fp16), and bf16 on a GPU older than Ampere through a slow emulation
    that `torch.cuda.is_bf16_supported()` reports as support."""
    if mixed_precision == "fp16" and on_cpu:
        raise UserError(
            "train.mixed_precision=fp16 needs a CUDA GPU (on the CPU Accelerate trains in fp32); use "
            "train.mixed_precision=bf16 or no on the CPU."
        )
    if mixed_precision == "bf16" and not on_cpu and not torch.cuda.is_bf16_supported(including_emulation=False):
        name = torch.cuda.get_device_name()
        raise UserError(
            f"train.mixed_precision=bf16 on {name}: this GPU has no bf16 tensor cores (compute capability < 8.0) "
            "and would emulate it; use train.mixed_precision=fp16 (or no)."
        )


def _tf32_flags() -> tuple[bool, bool]:
    return torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32


def _set_tf32(matmul: bool, cudnn: bool) -> None:
    torch.backends.cuda.matmul.allow_tf32 = matmul
    torch.backends.cudnn.allow_tf32 = cudnn


@contextlib.contextmanager
def tf32(enabled: bool) -> Iterator[None]:
    """TF32 for fp32 matmuls and convolutions inside the block (`train.allow_tf32`); off otherwise, which is the
    official fp32. The previous flags come back afterwards, so runs in one process do not leak it to each other."""
    previous = _tf32_flags()
    _set_tf32(enabled, enabled)
    try:
        yield
    finally:
        _set_tf32(*previous)


def describe(accelerator) -> dict[str, Any]:
    """The results.json `runtime` record: what ran, not what was asked for."""
    device = accelerator.device
    tf32_on = device.type == "cuda" and torch.backends.cuda.matmul.allow_tf32
    record = {
        "mixed_precision": accelerator.mixed_precision,
        "allow_tf32": bool(tf32_on),
        "device": device.type,
        "world_size": accelerator.num_processes,
    }
    if device.type == "cuda":
        record["device_name"] = torch.cuda.get_device_name(device)
    return record


def export_distributed_env() -> None:
    """A submitit job with several tasks (``hydra.launcher.tasks_per_node`` or ``nodes`` > 1) becomes one
    torch.distributed run: each task gets RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT from submitit's
    view of the SLURM (or local) job, which Accelerate reads. Without it every task would run a complete
    one-process copy into the same run folder. Under torchrun or ``accelerate launch`` the variables are set
    already and nothing changes. Each task keeps every GPU of its node visible and Accelerate picks
    ``cuda:LOCAL_RANK``."""
    if "SUBMITIT_EXECUTOR" not in os.environ or "RANK" in os.environ:
        return
    from submitit import JobEnvironment
    from submitit.helpers import TorchDistributedEnvironment

    if JobEnvironment().num_tasks == 1:
        return
    present = [key for key in DISTRIBUTED_KEYS if key in os.environ]
    if present:
        raise UserError(
            f"this submitit job has several tasks and {', '.join(present)} set without RANK: unset them, or "
            "launch one task per job (hydra.launcher.tasks_per_node=1) with torchrun inside it."
        )
    TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
