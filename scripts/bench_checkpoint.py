"""What a checkpoint by the clock costs: the time of one save (weights, AdamW moments, RNG states, fsync'd) for a
trainable state of the given size, as a share of `train.checkpoint_every_minutes`.

    .venv/bin/python scripts/bench_checkpoint.py --params 3044867 20000000 --minutes 15

3,044,867 is RoBERTa-large AdaMix's trainable count (the mnli_roberta_large plan); a save writes the weights and
AdamW's two moments, so the bytes grow linearly with the count.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from adamix_runner.training import checkpoint as ckpt


def _state(num_params: int):
    """Trainable tensors of `num_params` values in 1M-value pieces, with AdamW's state after one step."""
    sizes = [1_000_000] * (num_params // 1_000_000) + ([num_params % 1_000_000] if num_params % 1_000_000 else [])
    params = [torch.nn.Parameter(torch.randn(size)) for size in sizes]
    optimizer = torch.optim.AdamW(params, lr=1e-3)
    for param in params:
        param.grad = torch.randn_like(param)
    optimizer.step()
    return {f"p{i}": param for i, param in enumerate(params)}, optimizer


def time_save(num_params: int, repeats: int, folder: Path) -> float:
    """Median seconds of one save as the loop does it: snapshot to CPU, optimizer state, save_step."""
    params, optimizer = _state(num_params)
    times = []
    for step in range(repeats):
        started = time.perf_counter()
        trainable = {name: param.detach().cpu().clone() for name, param in params.items()}
        ckpt.save_step(
            folder,
            step,
            1,
            trainable=trainable,
            optimizer_state=optimizer.state_dict(),
            scheduler_state={},
            router_state={},
            progress={"global_step": step},
        )
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", type=int, nargs="+", default=[3_044_867])
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        for count in args.params:
            seconds = time_save(count, args.repeats, Path(folder) / str(count))
            share = seconds / (args.minutes * 60)
            print(f"{count:>12,} trainable: {seconds:.3f} s per save = {share:.4%} of {args.minutes:g} minutes")


if __name__ == "__main__":
    main()
