"""`make demo-fewshot`: a few-shot prompt-based run next to the same model's zero-shot accuracy (not a test).

Usage: python scripts/fewshot_demo.py <adamix-run overrides>  (a prompt task: task=fewshot_polarity, ...)
It trains and evaluates the run as `adamix-run` would (same run folder), then evaluates the untouched pretrained
model through the same template and label words on the same evaluation split, and prints both.
"""

from __future__ import annotations

import sys
import time

from accelerate import Accelerator
from torch.utils.data import DataLoader

from adamix_runner import tasks
from adamix_runner.config.compose import compose_config
from adamix_runner.evaluation.predict import evaluate
from adamix_runner.pipelines import prompt
from adamix_runner.run import run
from adamix_runner.tasks.fewshot import options


def zero_shot(cfg) -> dict[str, float]:
    """The pretrained LM, no adaptation, read through the task's template: what a few-shot run must beat."""
    task = tasks.load(cfg.task, cfg.data, options(cfg.fewshot, cfg.seed))
    tokenizer = prompt.load_tokenizer(cfg)
    model = prompt.load_model(cfg, task.num_labels).eval()
    encoded = prompt.encoded_splits(cfg, task, tokenizer, model)
    pad = prompt.collator(tokenizer, model)
    loaders = {s: DataLoader(encoded[s], cfg.train.eval_batch_size, collate_fn=pad) for s in task.eval_splits}
    return evaluate(model, loaders, task, Accelerator(cpu=True))


def main(overrides: list[str]) -> None:
    cfg = compose_config(*overrides)
    if tasks.kind(cfg.task) != "prompt":
        raise SystemExit(f"task={cfg.task.name} is not a prompt task; pass task=fewshot_polarity (or another)")
    started = time.perf_counter()
    trained = run(cfg)
    train_s = time.perf_counter() - started
    started = time.perf_counter()
    baseline = zero_shot(cfg)
    zero_s = time.perf_counter() - started
    metric = cfg.task.primary_metric
    classes = len(cfg.task.prompt.label_words)
    print(f"\n{cfg.task.name} / {cfg.model.name}: {metric}, {classes} classes, template {cfg.task.prompt.template!r}")
    print(f"  zero-shot (no training)              {baseline[metric]:.4f}   ({zero_s:.0f} s)")
    print(
        f"  few-shot {cfg.peft.method} (K={cfg.fewshot.k}, seed {cfg.seed})"
        f"{'':>8}{trained.record['metrics'][metric]:.4f}   ({train_s:.0f} s, run folder {trained.run_dir})"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
