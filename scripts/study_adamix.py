"""The declared AdaMix-vs-single-adapter study (docs/WHEN_ADAMIX_PAYS_OFF.md): run its cells, evaluate every
inference rule of each trained mixture, measure the experts, and summarise.

    python scripts/study_adamix.py --phase A              # train phase A (3 seeds per cell)
    python scripts/study_adamix.py --phase A --rules      # then every inference rule and the diagnostics of its runs
    python scripts/study_adamix.py --phase A --dry        # print the adamix-run command of every run, run nothing
    python scripts/study_adamix.py --summary              # mean ± std (n) of every declared cell that has runs

Every run is an ordinary run folder written by ``run(cfg)`` (the same folder ``adamix-run <overrides>`` writes),
under ``--output-root`` (default /work/coord/study-runs). Runs keep their last checkpoint
(``train.keep_checkpoint=true``), which holds the unmerged experts; from it this script writes, inside the run
folder, ``evaluations/<rule>.json`` (the tables contract: merge, fixed-expert<i>, random-seed<k>, ensemble) and
``diagnostics.json`` (how far each expert moved from its initialisation, cosine similarity between experts, and
how much averaging shrinks them).
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf

from adamix_runner import artifacts, tasks
from adamix_runner.adaptation import trainable_parameters
from adamix_runner.adaptation.adapter import BottleneckAdapter
from adamix_runner.cli import compose_config
from adamix_runner.config import run_dir
from adamix_runner.pipelines import for_kind
from adamix_runner.run import _accelerator, build_model, run
from adamix_runner.training import checkpoint as ckpt

# The fixed real-data CPU recipe (/work/coord/real-recipe.md), plus what the study needs to read the experts back.
RECIPE = (
    "task=polarity",
    "model=minilm",
    "data.max_train_samples=400",
    "train.batch_size=32",
    "train.eval_every_epoch=false",
    "train.keep_checkpoint=true",
    "logger=none",
)
SEEDS = (0, 1, 2)
RANDOM_EVAL_SEEDS = (0, 1, 2)
ADAPTER = ("peft=adapter",)
ADAMIX = ("peft=adamix",)


def _cells() -> dict[str, dict[str, tuple[str, ...]]]:
    """phase -> cell id -> overrides (besides RECIPE and seed). Fixed before any of the study's results; phase A's
    budget amended from 6 to 2 epochs before any result (measured 9.5 s per adapter step on the shared machine)."""
    a = ("train.epochs=2", "train.lr=1e-3")
    phases = {
        "A": {
            "adapter": (*ADAPTER, *a),
            "adamix": (*ADAMIX, *a),
            "adamix_cw0": (*ADAMIX, *a, "peft.consistency_weight=0"),
            "adamix_m1": (*ADAMIX, *a, "peft.num_experts=1"),
            "adamix_m2": (*ADAMIX, *a, "peft.num_experts=2"),
            "adamix_share_none": (*ADAMIX, *a, "peft.share=none"),
        },
        "B": {},
        "C": {},
        "D": {
            "adamix_identical": (*ADAMIX, *a, "peft.expert_init=identical"),
            "adamix_zero_up": (*ADAMIX, *a, "peft.up_init=zero"),
            "adapter_zero_up": (*ADAPTER, *a, "peft.up_init=zero"),
        },
    }
    for epochs in (6, 20):
        for name, method in (("adapter", ADAPTER), ("adamix", ADAMIX)):
            phases["B"][f"{name}_e{epochs}"] = (*method, f"train.epochs={epochs}", "train.lr=1e-3")
    # Phase E (declared 2026-12-01 ~20:40 UTC, after phases A-D): the checkpoint's pooler was never trained, so it
    # trains with the head, for both methods alike (model.train_pooler=true).
    phases["E"] = {
        f"{name}_pooler_e6": (*method, "train.epochs=6", "train.lr=1e-3", "model.train_pooler=true")
        for name, method in (("adapter", ADAPTER), ("adamix", ADAMIX))
    }
    for lr in ("3e-4", "3e-3"):
        for name, method in (("adapter", ADAPTER), ("adamix", ADAMIX)):
            phases["C"][f"{name}_lr{lr}"] = (*method, *a[:1], f"train.lr={lr}")
    return phases


CELLS = _cells()


def overrides(cell: tuple[str, ...], seed: int, output_root: str) -> list[str]:
    return [*RECIPE, *cell, f"seed={seed}", f"output_root={output_root}"]


def folder_of(cell: tuple[str, ...], seed: int, output_root: str) -> Path:
    return run_dir(compose_config(*overrides(cell, seed, output_root)))


def _evaluator(cfg):
    """The trained model rebuilt from the run's checkpoint, its initial trainable weights, and its evaluate()."""
    task = tasks.load(cfg.task, cfg.data)
    pipeline = for_kind(tasks.kind(cfg.task))
    tokenizer = pipeline.load_tokenizer(cfg)
    model, router, _ = build_model(cfg, task.num_labels)
    params = dict(trainable_parameters(model))
    initial = {name: p.detach().clone() for name, p in params.items()}
    saved, _ = ckpt.load_latest(Path(run_dir(cfg)) / "checkpoint")
    if saved is None:
        raise SystemExit(f"no checkpoint in {run_dir(cfg)}: was it run with train.keep_checkpoint=true?")
    with torch.no_grad():
        for name, param in params.items():
            param.copy_(saved.trainable[name])
    accelerator = _accelerator(cfg)
    prepared = pipeline.prepare(cfg, task, tokenizer, model, accelerator, run_dir(cfg))
    return model, router, initial, prepared.evaluate


def _rules(num_experts: int):
    """(file stem, inference, fixed expert, eval seed) of every inference rule of a mixture."""
    yield "merge", "merge", None, None
    for i in range(num_experts):
        yield f"fixed-expert{i}", "fixed", i, None
    yield "ensemble", "ensemble", None, None
    for k in RANDOM_EVAL_SEEDS:
        yield f"random-seed{k}", "random", None, k


def _cosines(rows: torch.Tensor) -> list[float]:
    flat = torch.nn.functional.normalize(rows.flatten(1).double(), dim=1)
    return [float(flat[i] @ flat[j]) for i, j in itertools.combinations(range(len(flat)), 2)]


def expert_diagnostics(model, initial: dict[str, torch.Tensor]) -> dict[str, float]:
    """Means over layers, per projection (down, up): movement of each expert's weight from its init (absolute and
    relative to its init's norm);
    for mixtures, the cosine between experts (of the weights and of their updates) and the shrinkage of averaging
    (||mean_j W_j|| / mean_j ||W_j||, now and at init)."""
    names = {id(p): n for n, p in model.named_parameters()}
    found: dict[str, list[float]] = {}
    for adapter in (m for m in model.modules() if isinstance(m, BottleneckAdapter)):
        for side, layer in (("down", adapter.down), ("up", adapter.up)):
            w = layer.weight.detach()
            w0 = initial[names[id(layer.weight)]]
            delta = w - w0
            moved = delta.flatten(1).norm(dim=1)
            found.setdefault(f"{side}_movement", []).extend(moved.tolist())
            if bool((w0.flatten(1).norm(dim=1) > 0).all()):  # not for a zero-initialised projection
                found.setdefault(f"{side}_relative_movement", []).extend((moved / w0.flatten(1).norm(dim=1)).tolist())
            if layer.num_experts > 1:
                found.setdefault(f"{side}_expert_weight_cosine", []).extend(_cosines(w))
                found.setdefault(f"{side}_expert_update_cosine", []).extend(_cosines(delta))
                for key, x in ((f"{side}_merge_shrinkage", w), (f"{side}_merge_shrinkage_at_init", w0)):
                    found.setdefault(key, []).append(float(x.mean(0).norm() / x.flatten(1).norm(dim=1).mean()))
    return {key: statistics.fmean(values) for key, values in found.items()}


def evaluate_rules(folder: Path) -> None:
    """Write evaluations/<rule>.json and diagnostics.json for one finished run (idempotent)."""
    cfg = OmegaConf.load(folder / ".hydra" / "config.yaml")
    if (folder / "diagnostics.json").exists():
        return
    model, router, initial, evaluate = _evaluator(cfg)
    metric = cfg.task.primary_metric
    diagnostics = expert_diagnostics(model, initial)
    mixture = cfg.peft.num_experts > 1
    final = artifacts.read_json(folder / "results.json")["metrics"]
    for stem, rule, expert, eval_seed in _rules(cfg.peft.num_experts) if mixture else ():
        path = folder / "evaluations" / f"{stem}.json"
        if path.exists():
            continue
        router.inference = rule
        router.fixed_expert = expert or 0
        if eval_seed is not None:
            router.eval_generator.manual_seed(eval_seed)
        # The run's own final evaluation was of the merged model (collapsed, equal to the merged view): reused.
        metrics = final if rule == "merge" and cfg.peft.inference == "merge" else evaluate()
        record = {"rule": rule, "eval_seed": eval_seed, "expert": expert, "metrics": metrics, "primary_metric": metric}
        artifacts.write_json_atomic(path, record)
    router.inference = "merge"
    artifacts.write_json_atomic(folder / "diagnostics.json", diagnostics)


def feature_probe(n: int = 128) -> str:
    """How separable the frozen backbone's features are before any training: the classifier reads the (frozen)
    pooler output; compare it with the CLS state and mean pooling on the first n training sentences."""
    cfg = compose_config(*RECIPE)
    task = tasks.load(cfg.task, cfg.data)
    pipeline = for_kind(tasks.kind(cfg.task))
    tokenizer, model = pipeline.load_tokenizer(cfg), pipeline.load_model(cfg, task.num_labels).eval()
    train = task.splits["train"]
    labels = torch.tensor(train["label"][:n])
    enc = tokenizer(train[task.text_fields[0]][:n], padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        out = model.base_model(**enc)
    mask = enc["attention_mask"][..., None]
    lines = []
    for name, x in (
        ("pooler (what the head reads)", out.pooler_output),
        ("CLS state", out.last_hidden_state[:, 0]),
        ("mean pooling", (out.last_hidden_state * mask).sum(1) / mask.sum(1)),
    ):
        unit = torch.nn.functional.normalize(x, dim=1)
        cosine = (unit @ unit.T)[~torch.eye(n, dtype=torch.bool)].mean()
        gap = (x[labels == 1].mean(0) - x[labels == 0].mean(0)).norm() / x.std(0).norm()
        lines.append(
            f"{name}: mean pairwise cosine {cosine:.3f}, per-dimension std {x.std(0).mean():.4f}, "
            f"class-mean gap / spread {gap:.3f}"
        )
    return "\n".join(lines)


def _selected(phases: list[str], cells: list[str] | None):
    for phase in phases:
        for cell_id, cell in CELLS[phase].items():
            if not cells or cell_id in cells:
                yield phase, cell_id, cell


def train_cells(phases: list[str], cells: list[str] | None, seeds, output_root: str, dry: bool) -> None:
    """Training first, cell by cell (all seeds of a cell before the next): the rules come after, from checkpoints."""
    for phase, cell_id, cell in _selected(phases, cells):
        for seed in seeds:
            args = overrides(cell, seed, output_root)
            if dry:
                print("adamix-run " + " ".join(args))
                continue
            started = time.perf_counter()
            result = run(compose_config(*args))
            score = result.record["metrics"].get("validation/accuracy")
            print(
                f"{phase} {cell_id} seed{seed}: {score} train {result.record['timing'].get('train_s', 0):.0f} s,"
                f" all {time.perf_counter() - started:.0f} s  {result.run_dir}",
                flush=True,
            )


def rules_of_cells(phases: list[str], cells: list[str] | None, seeds, output_root: str) -> None:
    for phase, cell_id, cell in _selected(phases, cells):
        for seed in seeds:
            folder = folder_of(cell, seed, output_root)
            if (folder / "checkpoint").is_dir():
                started = time.perf_counter()
                evaluate_rules(folder)
                print(f"rules {phase} {cell_id} seed{seed}: {time.perf_counter() - started:.0f} s", flush=True)


def _mean_std(values: list[float]) -> str:
    if not values:
        return "not run"
    if len(values) == 1:
        return f"{values[0]:.4f} (n=1)"
    return f"{statistics.fmean(values):.4f} ± {statistics.stdev(values):.4f} (n={len(values)})"


def _cell_runs(cell: tuple[str, ...], seeds, output_root: str) -> list[Path]:
    folders = []
    for seed in seeds:
        folder = folder_of(cell, seed, output_root)
        record = artifacts.read_json(folder / "results.json")
        if record and record.get("status") == "completed":
            folders.append(folder)
    return folders


def _rule_scores(folder: Path) -> dict[str, list[float]]:
    """The run's accuracy under each rule family (fixed experts and random seeds pooled per family)."""
    scores: dict[str, list[float]] = {}
    for path in sorted((folder / "evaluations").glob("*.json")):
        family = path.stem.rstrip("0123456789").removesuffix("-seed").removesuffix("-expert")
        metrics = json.loads(path.read_text())["metrics"]
        scores.setdefault(family, []).append(metrics["validation/accuracy"])
        scores.setdefault(f"{family}_loss", []).append(metrics["validation/loss"])
    return scores


DIAGNOSTIC_KEYS = (
    "down_relative_movement",
    "up_relative_movement",
    "down_expert_weight_cosine",
    "down_expert_update_cosine",
    "down_merge_shrinkage_at_init",
    "down_merge_shrinkage",
)


def summary(output_root: str, seeds) -> str:
    """Markdown: per phase the final (merged) validation accuracy of each cell; for mixtures every inference rule;
    the experts' diagnostics. Cells without completed runs read "not run"."""
    out = []
    for phase, cells in CELLS.items():
        header = "| cell | overrides | validation accuracy | validation loss | train s/run |"
        out += [f"\n### Phase {phase}\n", header, "|---" * 5 + "|"]
        rules, diags = [], []
        for cell_id, cell in cells.items():
            folders = _cell_runs(cell, seeds, output_root)
            records = [artifacts.read_json(f / "results.json") for f in folders]
            acc = [r["metrics"]["validation/accuracy"] for r in records]
            secs = f"{statistics.fmean(r['timing']['train_s'] for r in records):.0f}" if records else ""
            loss = _mean_std([r["metrics"]["validation/loss"] for r in records])
            out.append(f"| {cell_id} | `{' '.join(cell)}` | {_mean_std(acc)} | {loss} | {secs} |")
            per_run = [_rule_scores(f) for f in folders]
            if any(per_run):
                families = ("merge", "fixed", "random", "ensemble")
                pooled = {k: [v for run in per_run for v in run.get(k, [])] for k in families}
                loss = {k: [v for run in per_run for v in run.get(f"{k}_loss", [])] for k in families}
                best = [max(run["fixed"]) for run in per_run if run.get("fixed")]
                cells_text = [f"{_mean_std(pooled[k])}; loss {_mean_std(loss[k])}" for k in families]
                cells_text.insert(2, _mean_std(best))
                rules.append(f"| {cell_id} | " + " | ".join(cells_text) + " |")
            found = [artifacts.read_json(f / "diagnostics.json") for f in folders]
            found = [d for d in found if d]
            if found:
                values = [
                    f"{statistics.fmean(d[k] for d in found):.3f}" if all(k in d for d in found) else "—"
                    for k in DIAGNOSTIC_KEYS
                ]
                diags.append(f"| {cell_id} ({len(found)}) | " + " | ".join(values) + " |")
        if rules:
            out += [
                "\n| mixture cell | merged | single expert (experts × seeds) | best single expert | random routing"
                " (eval seeds × seeds) | ensemble |",
                "|---|---|---|---|---|---|",
                *rules,
            ]
        if diags:
            out.append("\n| cell (runs) | " + " | ".join(DIAGNOSTIC_KEYS) + " |")
            out.append("|---" * (len(DIAGNOSTIC_KEYS) + 1) + "|")
            out += diags
    return "\n".join(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phase", nargs="*", default=[], choices=sorted(CELLS))
    parser.add_argument("--cells", nargs="*", help="only these cell ids of the phases")
    parser.add_argument("--seeds", nargs="*", type=int, default=list(SEEDS))
    parser.add_argument("--output-root", default="/work/coord/study-runs")
    parser.add_argument("--dry", action="store_true", help="print the adamix-run commands only")
    parser.add_argument("--rules", action="store_true", help="evaluate the finished runs' rules, train nothing")
    parser.add_argument("--summary", action="store_true")
    parser.add_argument("--probe", action="store_true", help="how separable the frozen features are (no training)")
    args = parser.parse_args(argv)
    if args.probe:
        print(feature_probe())
    if args.rules:
        rules_of_cells(args.phase, args.cells, args.seeds, args.output_root)
    else:
        train_cells(args.phase, args.cells, args.seeds, args.output_root, args.dry)
    if args.summary:
        print(summary(args.output_root, args.seeds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
