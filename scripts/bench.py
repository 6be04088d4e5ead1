"""Benchmark AdaMix against its alternatives in one process, on one backbone and one batch (not a test).

    python scripts/bench.py                                   # MiniLM shapes, batch 16 x 64, CPU fp32, minutes
    python scripts/bench.py --backbone bert-base --reps 5     # the paper's BERT-base shapes
    python scripts/bench.py --backbone roberta-large --device cuda --dtype bf16 --batch 32   # on a GPU

Every variant is built from the same random-init backbone (model.pretrained=false: the shapes and the cost of the
real model, no download). The repetitions of all variants are interleaved and medians reported, so a busy machine
slows every variant alike. Prints the tables and the target ratios (docs/PERFORMANCE.md) and writes them with the
raw timings to outputs/bench/<backbone>-<device>-<dtype>-<time>.json. Thresholds are read by people, not asserted.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import peft
import torch
import transformers
from bench.flops import peak_tflops, train_flops_per_token
from bench.measure import corpus_lengths, interleaved, padding_cost, sync, train_memory
from bench.variants import (
    COMPILED,
    DOUBLE_BATCH,
    Options,
    build_backbone,
    inference_variants,
    make_batch,
    training_variants,
)

TARGETS = (  # (ratio, numerator, denominator, target, kind)
    ("AdaMix no consistency / single adapter", "AdaMix, no consistency", "single adapter", "<= 1.05", "train"),
    ("AdaMix with consistency / single adapter", "AdaMix, fused 2B consistency", "single adapter", "<= 2.0", "train"),
    ("AdaMix with consistency / adapter on 2B", "AdaMix, fused 2B consistency", DOUBLE_BATCH, "report", "train"),
    ("single adapter 2B / B (the machine's batch scaling)", DOUBLE_BATCH, "single adapter", "report", "train"),
    (
        "fused 2B / two sequential passes",
        "AdaMix, fused 2B consistency",
        "AdaMix, two sequential passes",
        "< 1.0",
        "train",
    ),
    ("our LoRA / HF PEFT LoRA", "our LoRA", "HF PEFT LoRA", "<= 1.0", "train"),
    ("merged AdaMix / single adapter", "merged AdaMix", "single adapter", "<= 1.02", "infer"),
    (
        "merged AdaMix / averaging every forward",
        "merged AdaMix",
        "AdaMix, averaging at every forward (official)",
        "< 1.0",
        "infer",
    ),
    ("AdaMix memory / full fine-tuning", "AdaMix, fused 2B consistency", "full fine-tuning", "report", "memory"),
)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="minilm", help="tiny-bert, minilm, bert-base, roberta-large, ...")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=64, help="polarity batches pad to about 50 (PERFORMANCE.md)")
    parser.add_argument("--infer-batch", type=int, default=1, help="rows per inference forward (1: latency)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=("fp32", "bf16", "fp16"), default="fp32", help="autocast dtype")
    parser.add_argument("--attn", choices=("sdpa", "eager"), default="sdpa", help="attention implementation")
    parser.add_argument("--reps", type=int, default=7, help="interleaved repetitions per variant")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--adapter-dim", type=int, default=16)
    parser.add_argument("--num-experts", type=int, default=4)
    parser.add_argument("--lora-rank", type=int, default=8)
    parser.add_argument("--data-batch", type=int, default=32, help="batch size of the data-path count")
    parser.add_argument("--data-max-len", type=int, default=128, help="max_seq_length of the data-path count")
    parser.add_argument("--skip", nargs="*", default=[], choices=("train", "infer", "data"), help="parts to skip")
    parser.add_argument("--compile", action="store_true", help="add AdaMix compiled as train.compile=true compiles it")
    parser.add_argument("--peak-tflops", type=float, help="the card's peak for MFU (default: looked up by name)")
    parser.add_argument("--out", type=Path, default=Path("outputs/bench"))
    return parser.parse_args()


def _table(title: str, header: tuple[str, ...], rows: list[tuple]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    print(f"\n{title}")
    for row in (header, *rows):
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)))


def _compile_first(cases: dict, device: str) -> float | None:
    """Seconds of the compiled variant's first step (compilation included); later steps are timed with the rest."""
    if COMPILED not in cases:
        return None
    started = time.perf_counter()
    cases[COMPILED].step()
    sync(device)
    return time.perf_counter() - started


def _throughput(case, options: Options, seconds: float, peak: float | None) -> tuple[float, float, float | None]:
    """(samples/s, model TFLOP/s, MFU against `peak` TFLOP/s or None) of one training step (flops.py)."""
    tokens = case.samples * options.seq_len * case.views
    tflops = train_flops_per_token(case.model, options.seq_len) * tokens / seconds / 1e12
    return case.samples / seconds, tflops, (tflops / peak if peak else None)


def _train(options: Options, backbone, batch, reps: int, warmup: int, peak: float | None) -> dict:
    cases = training_variants(backbone, batch, options)
    compile_s = _compile_first(cases, options.device)
    times = interleaved({name: case.step for name, case in cases.items()}, reps, warmup, options.device)
    memory = {name: train_memory(case.model, case.params, case.step, options.device) for name, case in cases.items()}
    trainable = {name: sum(p.numel() for p in case.params) for name, case in cases.items()}
    medians = {name: statistics.median(t) for name, t in times.items()}
    speed = {name: _throughput(cases[name], options, m, peak) for name, m in medians.items()}
    base = medians["single adapter"]
    rows = [
        (
            name,
            f"{m * 1e3:.1f}",
            f"{m / base:.3f}",
            f"{speed[name][0]:.1f}",
            f"{speed[name][1]:.3g}",
            "-" if speed[name][2] is None else f"{speed[name][2]:.1%}",
            f"{memory[name] / 2**20:.0f}",
            f"{trainable[name]:,}",
        )
        for name, m in medians.items()
    ]
    _table(
        f"training step ({options.batch} x {options.seq_len}; peak {peak or '-'} TFLOP/s)",
        ("variant", "median ms", "/ adapter", "samples/s", "TFLOP/s", "MFU", "peak MB", "trainable"),
        rows,
    )
    if compile_s is not None:
        print(f"{COMPILED}: first step (compilation) {compile_s:.1f} s")
    return {
        "seconds": times,
        "median_s": medians,
        "peak_bytes": memory,
        "samples_per_s": {n: v[0] for n, v in speed.items()},
        "model_tflops": {n: v[1] for n, v in speed.items()},
        "mfu": {n: v[2] for n, v in speed.items()},
        "peak_tflops": peak,
        "compile_first_step_s": compile_s,
    }


def _infer(options: Options, backbone, batch, reps: int, warmup: int) -> dict:
    times = interleaved(inference_variants(backbone, batch, options), reps, warmup, options.device)
    medians = {name: statistics.median(t) for name, t in times.items()}
    base = medians["single adapter"]
    rows = [(name, f"{m * 1e3:.1f}", f"{m / base:.3f}") for name, m in medians.items()]
    _table(
        f"inference forward ({len(batch['input_ids'])} x {options.seq_len})",
        ("variant", "median ms", "/ adapter"),
        rows,
    )
    return {"seconds": times, "median_s": medians}


def _data(max_len: int, data_batch: int) -> dict:
    cost = {name: padding_cost(lengths, data_batch, max_len) for name, lengths in corpus_lengths(max_len).items()}
    rows = [
        (corpus, strategy, f"{c['tokens_per_step']:.0f}", f"{c['padding_fraction']:.1%}")
        for corpus, strategies in cost.items()
        for strategy, c in strategies.items()
    ]
    _table(
        f"data path (batch {data_batch}, max {max_len})",
        ("corpus", "batching", "tokens/step", "padding"),
        rows,
    )
    return cost


def _ratios(result: dict) -> list[dict]:
    ratios = []
    for label, top, bottom, target, kind in TARGETS:
        part = result.get("train" if kind == "memory" else kind)
        if part is None:
            continue
        values = part["peak_bytes"] if kind == "memory" else part["median_s"]
        ratio = values[top] / values[bottom]
        if target == "report":
            met = "-"
        else:
            op, bound = target.split()
            met = "yes" if (ratio <= float(bound) if op == "<=" else ratio < float(bound)) else "no"
        ratios.append({"ratio": label, "value": ratio, "target": target, "met": met})
    _table(
        "targets",
        ("ratio", "measured", "target", "met"),
        [tuple(f"{v:.3f}" if isinstance(v, float) else v for v in r.values()) for r in ratios],
    )
    return ratios


def main() -> None:
    args = _arguments()
    options = Options(
        args.backbone,
        args.batch,
        args.seq_len,
        args.device,
        args.dtype,
        args.attn,
        args.adapter_dim,
        args.num_experts,
        args.lora_rank,
        args.compile,
    )
    torch.backends.cuda.matmul.allow_tf32 = True
    started = time.perf_counter()
    result: dict = {
        "options": vars(options),
        "infer_batch": args.infer_batch,
        "reps": args.reps,
        "warmup": args.warmup,
    }
    if {"train", "infer"} - set(args.skip):
        backbone = build_backbone(options)
        vocab = backbone.config.vocab_size
        if "train" not in args.skip:
            batch = make_batch(options, vocab, args.batch)
            peak = peak_tflops(args.device, args.peak_tflops)
            result["train"] = _train(options, backbone, batch, args.reps, args.warmup, peak)
        if "infer" not in args.skip:
            batch = make_batch(options, vocab, args.infer_batch)
            result["infer"] = _infer(options, backbone, batch, args.reps, args.warmup)
    if "data" not in args.skip:
        result["data"] = _data(args.data_max_len, args.data_batch)
    result["targets"] = _ratios(result)
    result["wall_s"] = time.perf_counter() - started
    result["versions"] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "threads": torch.get_num_threads(),
        "device_name": torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = (
        args.out / f"{args.backbone}-{args.device.replace(':', '')}-{args.dtype}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    )
    path.write_text(json.dumps(result, indent=2))
    print(f"\n{result['wall_s']:.0f} s; written to {path}")


if __name__ == "__main__":
    main()
