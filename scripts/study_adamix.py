"""Issue 14's study (docs/WHEN_ADAMIX_PAYS_OFF.md): how far each expert moved, how alike the experts are and how
much averaging shrinks them, for every finished run of a table (`make study`: conf/table/study.yaml); and a probe of
how separable the frozen backbone's features are.

    python scripts/study_adamix.py --diagnose [--table study] [--profile paper] [--output-root R]  # per run
    python scripts/study_adamix.py --summary [--table study] [--profile paper] [--output-root R]   # per cell
    python scripts/study_adamix.py --probe                                              # frozen features, no training

The runs are trained, and their inference rules evaluated, by `make study` (adamix-table study, study_rules); the
accuracy tables come from adamix-report. A run's initial weights are rebuilt from its seed (build.build_model seeds
the backbone and the adapters' init), its trained ones read from its adapter folder (the unmerged experts that an
AdaMix run keeps in adapter/experts.safetensors).
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
from pathlib import Path

import torch
from omegaconf import OmegaConf

from adamix_runner import artifacts, tasks
from adamix_runner.adaptation import trainable_parameters
from adamix_runner.adaptation.adapter import BottleneckAdapter
from adamix_runner.build import build_model
from adamix_runner.config.compose import compose_config
from adamix_runner.pipelines import for_kind
from adamix_runner.run_folder import ADAPTER, load_config, read_json, seed_dir, write_json_atomic
from adamix_runner.tables.plan import make_plan

PROBE_RECIPE = ("task=polarity", "model=minilm", "data.max_train_samples=400", "train.batch_size=32")
DIAGNOSTICS_FILE = "diagnostics.json"


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


def diagnose(folder: Path) -> dict[str, float]:
    """The diagnostics of one finished run: its seeded initial weights against the trained ones it saved."""
    cfg = load_config(folder)
    num_labels = tasks.load(cfg.task, cfg.data).num_labels
    initial, _, _ = build_model(cfg, num_labels)
    start = {name: p.detach().clone() for name, p in trainable_parameters(initial)}
    saved = artifacts.read_adapter_config(folder / ADAPTER)
    unmerged = OmegaConf.merge(cfg, {"peft": {"inference": "random"}})  # any rule but merge loads every expert
    trained, _, _ = build_model(unmerged, num_labels, folder / ADAPTER, saved)
    return expert_diagnostics(trained, start)


def _plan(table: str, profile: str, output_root: str | None):
    extra = [f"output_root={output_root}"] if output_root else []
    return make_plan(table, profile, None, extra, Path("outputs/bench"))


def run_folders(table: str, profile: str, output_root: str | None) -> list[Path]:
    """The completed runs of every cell of `table` (its profile's output root unless one is given)."""
    plan = _plan(table, profile, output_root)
    return [seed_dir(c.folder, seed) for c in plan.cells for seed, state in c.status.items() if state == "completed"]


def diagnose_all(table: str, profile: str, output_root: str | None) -> None:
    """diagnostics.json in every completed run folder of the table that lacks one (idempotent)."""
    for folder in run_folders(table, profile, output_root):
        if not (folder / DIAGNOSTICS_FILE).exists():
            write_json_atomic(folder / DIAGNOSTICS_FILE, diagnose(folder))
            print(f"diagnosed {folder}", flush=True)


DIAGNOSTIC_KEYS = (
    "down_relative_movement",
    "up_relative_movement",
    "down_expert_weight_cosine",
    "down_expert_update_cosine",
    "down_merge_shrinkage_at_init",
    "down_merge_shrinkage",
)


def summary(table: str, profile: str, output_root: str | None) -> str:
    """Markdown: per cell of the table, the mean of each diagnostic over its diagnosed runs (— where it does not
    apply: a single adapter has no second expert; a zero-initialised projection no relative movement)."""
    plan = _plan(table, profile, output_root)
    lines = ["| cell (runs) | " + " | ".join(DIAGNOSTIC_KEYS) + " |", "|---" * (len(DIAGNOSTIC_KEYS) + 1) + "|"]
    for cell in plan.cells:
        found = [read_json(seed_dir(cell.folder, seed) / DIAGNOSTICS_FILE) for seed in plan.seeds]
        found = [d for d in found if d]
        if not found:
            continue
        values = [
            f"{statistics.fmean(d[k] for d in found):.3f}" if all(k in d for d in found) else "—"
            for k in DIAGNOSTIC_KEYS
        ]
        lines.append(f"| {cell.cell.row} ({len(found)}) | " + " | ".join(values) + " |")
    return "\n".join(lines)


def feature_probe(n: int = 128) -> str:
    """How separable the frozen backbone's features are before any training: the classifier reads the (frozen)
    pooler output; compare it with the CLS state and mean pooling on the first n training sentences."""
    cfg = compose_config(*PROBE_RECIPE)
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--table", default="study", help="the conf/table id whose runs to measure")
    parser.add_argument("--profile", default="paper", choices=("paper", "smoke"))
    parser.add_argument("--output-root", help="default: the table's, for the profile (outputs, outputs/smoke)")
    parser.add_argument("--diagnose", action="store_true", help="write diagnostics.json in every finished run")
    parser.add_argument("--summary", action="store_true", help="print the diagnostics per cell (markdown)")
    parser.add_argument("--probe", action="store_true", help="how separable the frozen features are (no training)")
    args = parser.parse_args(argv)
    if args.probe:
        print(feature_probe())
    if args.diagnose:
        diagnose_all(args.table, args.profile, args.output_root)
    if args.summary:
        print(summary(args.table, args.profile, args.output_root))
    return 0


if __name__ == "__main__":
    sys.exit(main())
