"""Scan run folders: results.json, the config, metrics.jsonl and evaluations/*.json of every run under a root."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from adamix_runner.errors import UserError
from adamix_runner.run_folder import CONFIG, EVALUATIONS, METRICS, RESULTS, RUNS, read_json


@dataclass
class RunRecord:
    folder: Path
    status: str
    config: dict[str, Any]
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, int] = field(default_factory=dict)
    primary_metric: str | None = None
    timing: dict[str, float] = field(default_factory=dict)
    evaluations: dict[str, dict[str, Any]] = field(default_factory=dict)
    mtime: float = 0.0
    runtime: dict[str, Any] = field(default_factory=dict)  # results.json "runtime": what actually ran, when recorded

    def precision(self) -> str:
        """What the run trained in: results.json runtime.mixed_precision when recorded, else its config's
        train.mixed_precision; "no" reads fp32 (tf32 when the run allowed TF32)."""
        mixed = self.runtime.get("mixed_precision", self.get("train.mixed_precision", "no"))
        tf32 = self.runtime.get("allow_tf32", self.get("train.allow_tf32", False))
        return str(mixed) if mixed not in (None, "no") else "tf32" if tf32 else "fp32"

    def get(self, dotted: str, default: Any = None) -> Any:
        return lookup(self.config, dotted, default)

    def curve(self, key: str = "train/loss") -> list[tuple[int, float]]:
        """(step, value) pairs of `key` from metrics.jsonl (training steps only)."""
        path = self.folder / METRICS
        if not path.exists():
            return []
        points = []
        for line in path.read_text().splitlines():
            row = json.loads(line) if line.strip() else {}
            if key in row and row.get("step", -1) >= 0:
                points.append((row["step"], row[key]))
        return points


def lookup(config: dict[str, Any], dotted: str, default: Any = None) -> Any:
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def _config(folder: Path, record: dict[str, Any]) -> dict[str, Any]:
    """results.json's resolved config, else the composed one (a failed run's record has none)."""
    if "config" in record:
        return record["config"]
    composed = folder / CONFIG
    return OmegaConf.to_container(OmegaConf.load(composed), resolve=False) if composed.exists() else {}


def load_run(results: Path) -> RunRecord:
    folder = results.parent
    record = read_json(results)
    evaluations = {path.stem: read_json(path) for path in sorted((folder / EVALUATIONS).glob("*.json"))}
    return RunRecord(
        folder=folder,
        status=record.get("status", "unknown"),
        config=_config(folder, record),
        metrics=record.get("metrics", {}),
        params=record.get("params", {}),
        primary_metric=record.get("primary_metric"),
        timing=record.get("timing", {}),
        evaluations=evaluations,
        mtime=results.stat().st_mtime,
        runtime=record.get("runtime") or {},
    )


def scan(root: Path) -> list[RunRecord]:
    """Every run under `root` (an output root with runs/, or any folder of run folders)."""
    if not root.exists():
        raise UserError(f"runs={root} does not exist; pass the output root of the runs (e.g. runs=outputs).")
    base = root / RUNS if (root / RUNS).is_dir() else root
    return [load_run(path) for path in sorted(base.rglob(RESULTS))]
