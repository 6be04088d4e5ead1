"""Any sweep, declared or not: runs grouped by the config keys that differ between them, one line per group."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from adamix_runner.report.aggregate import SeedValues, scale
from adamix_runner.report.render import Sheet
from adamix_runner.report.runs import RunRecord

# Keys that do not change what is computed (the run folder's hash leaves them out too), and the seed, which is
# what a group aggregates over.
IGNORED = ("seed", "output_root", "overwrite", "logger", "train.num_workers", "train.log_every_steps")
HEATMAP_AXES = ("peft.adapter_dim", "peft.num_experts")


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = json.dumps(value, sort_keys=True, default=str)
    return flat


def _ignored(key: str) -> bool:
    return any(key == name or key.startswith(f"{name}.") for name in IGNORED)


def differing_keys(runs: list[RunRecord]) -> list[str]:
    """The config keys whose values are not the same in every run (a key absent from a run counts as a value)."""
    flats = [flatten(run.config) for run in runs]
    keys = sorted({key for flat in flats for key in flat if not _ignored(key)})
    return [key for key in keys if len({flat.get(key) for flat in flats}) > 1]


def groups(runs: list[RunRecord]) -> tuple[list[str], dict[tuple[str, ...], list[RunRecord]]]:
    keys = differing_keys(runs)
    grouped: dict[tuple[str, ...], list[RunRecord]] = defaultdict(list)
    for run in runs:
        flat = flatten(run.config)
        grouped[tuple(flat.get(key, "–") for key in keys)].append(run)
    return keys, dict(sorted(grouped.items(), key=lambda item: [_order(value) for value in item[0]]))


def _order(value: str) -> tuple[int, float, str]:
    """Numbers in numeric order (8 before 16), then everything else as text."""
    try:
        number = json.loads(value)
    except json.JSONDecodeError:
        return (1, 0.0, value)
    if isinstance(number, (int, float)) and not isinstance(number, bool):
        return (0, float(number), value)
    return (1, 0.0, value)


def cell(runs: list[RunRecord]) -> tuple[SeedValues, str]:
    """The group's primary metric over its seeds (runs sharing a seed: the newest completed one counts)."""
    result, metric = SeedValues(), ""
    for run in sorted(runs, key=lambda r: (r.status == "completed", r.mtime)):
        seed = run.get("seed", 0)
        metric = run.primary_metric or metric
        if run.status == "completed" and metric in run.metrics:
            result.values[seed] = run.metrics[metric] * scale(metric)
            result.statuses.pop(seed, None)
        elif seed not in result.values:
            result.statuses[seed] = run.status if run.status != "completed" else "no metric"
    return result, metric


def sheet(name: str, runs: list[RunRecord]) -> tuple[Sheet, list[dict[str, Any]]]:
    keys, grouped = groups(runs)
    header = [*keys, "metric", "mean ± std (n)", "#Param", "train s"]
    rows, records = [], []
    for values, members in grouped.items():
        found, metric = cell(members)
        params = sorted({run.params["inference"] for run in members if run.params})
        train = [run.timing["train_s"] for run in members if "train_s" in run.timing]
        shown = [json.loads(value) if value != "–" else "–" for value in values]
        stats = found.stats
        rows.append(
            [
                *(str(value) for value in shown),
                metric,
                found.format(),
                "/".join(f"{count:,}" for count in params),
                f"{sum(train) / len(train):.1f}" if train else "",
            ]
        )
        records.append(
            {
                **dict(zip(keys, shown, strict=True)),
                "metric": metric,
                "mean": "" if stats is None else f"{stats.mean:.6g}",
                "std": "" if stats is None or stats.std is None else f"{stats.std:.6g}",
                "n": 0 if stats is None else stats.n,
                "status": found.status() if stats is None or found.statuses else "ok",
                "params_inference": "/".join(str(count) for count in params),
            }
        )
    notes = [
        f"{len(runs)} run folders, grouped by the config keys that differ between them: {', '.join(keys) or 'none'}",
        "mean ± sample std (n seeds) of each group's primary metric (GLUE metrics in %)",
    ]
    return Sheet(f"sweep: {name}", header, rows, notes), records


def heatmaps(runs: list[RunRecord]) -> dict[str, dict[tuple[int, int], float]]:
    """Mean metric per (adapter_dim, num_experts), one map per combination of the other differing keys."""
    keys, grouped = groups(runs)
    if not all(axis in keys for axis in HEATMAP_AXES):
        return {}
    others = [i for i, key in enumerate(keys) if key not in HEATMAP_AXES]
    maps: dict[str, dict[tuple[int, int], float]] = defaultdict(dict)
    for values, members in grouped.items():
        found, _ = cell(members)
        if found.stats is None:
            continue
        title = ", ".join(f"{keys[i]}={json.loads(values[i])}" for i in others if values[i] != "–")
        dim, experts = (json.loads(values[keys.index(axis)]) for axis in HEATMAP_AXES)
        maps[title][(dim, experts)] = found.stats.mean
    return dict(maps)
