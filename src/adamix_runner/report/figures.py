"""PNG figures with matplotlib's Agg backend (no display): the Figure 5 violin plot, the adapter_dim × num_experts
heatmap of a sweep, and training curves from metrics.jsonl.

Beside each <name>.png lies <name>.json: what was drawn, read back from the figure's own artists (the points of
each line and scatter, whether a violin was drawn, the notes written in a panel, the legend, the heatmap's squares,
the numbers written in them, its title and axis labels), so that a reader or a test can check what was drawn, not
only that a file exists."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def violin(
    samples: dict[str, list[float]],
    merged: dict[str, float | None],
    path: Path,
    title: str,
    paper: dict[str, tuple[float, float, float]] | None = None,
) -> Path:
    """One violin per task of the single random-routing evaluations, the merged AdaMix result as a red dot and,
    where given, the paper's range (grey bar) and AdaMix value (black cross)."""
    plt = _pyplot()
    tasks = list(samples) or ["(no tasks)"]
    fig, axes = plt.subplots(1, len(tasks), figsize=(max(2.2 * len(tasks), 6), 3.4), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        values = samples.get(task, [])
        if not values:
            ax.text(0.5, 0.5, "not evaluated", ha="center", transform=ax.transAxes, fontsize=8)
        elif len(set(values)) > 1:
            ax.violinplot(values, positions=[0], showmeans=True)
        ax.scatter([0] * len(values), values, s=8, color="tab:blue", alpha=0.6, label="random routing")
        if merged.get(task) is not None:
            ax.scatter([0], [merged[task]], s=40, color="red", zorder=3, label="AdaMix (merged)")
        if paper and task in paper:
            low, high, adamix = paper[task]
            ax.vlines(0.35, low, high, color="grey", linewidth=4, label="paper: random range")
            ax.scatter([0.35], [adamix], marker="x", color="black", label="paper: AdaMix")
        ax.set_xticks([])
        ax.set_title(task)
    labelled = [ax for ax in axes[0] if ax.get_legend_handles_labels()[0]]
    if labelled:
        labelled[0].legend(fontsize=6, loc="lower left")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    drawn = {ax.get_title(): _violin_panel(ax) for ax in fig.axes}
    return _save(fig, plt, path, {"title": fig.get_suptitle(), "legend": _legend(fig), "tasks": drawn})


def _violin_panel(ax) -> dict[str, Any]:
    """A violin panel as drawn: its labelled points (y values), the paper's range (low, high), whether a violin
    was drawn and the notes written in it."""
    from matplotlib.collections import PolyCollection

    drawn: dict[str, Any] = {
        "violin": any(isinstance(collection, PolyCollection) for collection in ax.collections),
        "notes": [text.get_text() for text in ax.texts],
    }
    for collection in ax.collections:
        label = collection.get_label()
        if label == "paper: random range":
            (low, high), *_ = ([float(y) for _, y in segment] for segment in collection.get_segments())
            drawn[label] = [low, high]
        elif label and not label.startswith("_"):
            drawn[label] = [float(y) for _, y in collection.get_offsets()]
    return drawn


def heatmap(values: dict[tuple[int, int], float], path: Path, title: str, metric: str) -> Path:
    """Mean metric per (adapter_dim, num_experts), the numbers written in the squares."""
    plt = _pyplot()
    dims = sorted({dim for dim, _ in values})
    experts = sorted({m for _, m in values})
    grid = [[values.get((dim, m), math.nan) for m in experts] for dim in dims]
    fig, ax = plt.subplots(figsize=(1.2 * len(experts) + 2, 0.8 * len(dims) + 1.5))
    image = ax.imshow(grid, cmap="viridis", aspect="auto")
    for i, row in enumerate(grid):
        for j, value in enumerate(row):
            if not math.isnan(value):
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", color="white", fontsize=8)
    ax.set_xticks(range(len(experts)), [str(m) for m in experts])
    ax.set_yticks(range(len(dims)), [str(d) for d in dims])
    ax.set_xlabel("peft.num_experts")
    ax.set_ylabel("peft.adapter_dim")
    ax.set_title(title, fontsize=9)
    bar = fig.colorbar(image, ax=ax, label=metric)
    fig.tight_layout()
    shown = image.get_array().filled(math.nan).tolist()
    written: list[list[str | None]] = [[None] * len(row) for row in shown]
    for text in ax.texts:
        column, row = text.get_position()
        written[round(row)][round(column)] = text.get_text()
    drawn = {
        "title": ax.get_title(),
        "metric": bar.ax.get_ylabel(),
        ax.get_ylabel(): [int(tick.get_text()) for tick in ax.get_yticklabels()],
        ax.get_xlabel(): [int(tick.get_text()) for tick in ax.get_xticklabels()],
        "values": [[None if math.isnan(v) else float(v) for v in row] for row in shown],
        "written": written,
    }
    return _save(fig, plt, path, drawn)


def curves(panels: dict[str, dict[str, list[tuple[int, float]]]], path: Path, title: str, key: str) -> Path:
    """One panel per task, one line per row (or run): `key` against the training step."""
    plt = _pyplot()
    names = [name for name, lines in panels.items() if any(lines.values())] or ["(no curves)"]
    cols = min(len(names), 4)
    fig, axes = plt.subplots(
        math.ceil(len(names) / cols), cols, figsize=(3.2 * cols, 2.6 * math.ceil(len(names) / cols)), squeeze=False
    )
    for ax, name in zip(axes.flat, names, strict=False):
        for label, points in panels.get(name, {}).items():
            if points:
                steps, values = zip(*points, strict=True)
                ax.plot(steps, values, label=label, linewidth=1, marker="." if len(points) < 20 else None)
        ax.set_title(name, fontsize=8)
        ax.set_xlabel("step", fontsize=7)
        ax.set_ylabel(key, fontsize=7)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    if axes.flat[0].get_legend_handles_labels()[0]:
        axes.flat[0].legend(fontsize=6)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    drawn = {
        ax.get_title(): {line.get_label(): [[float(x), float(y)] for x, y in line.get_xydata()] for line in ax.lines}
        for ax in axes.flat
        if ax.axison
    }
    first = axes.flat[0]
    read = {"title": fig.get_suptitle(), "key": first.get_ylabel(), "x": first.get_xlabel(), "legend": _legend(fig)}
    return _save(fig, plt, path, read | {"panels": drawn})


def _legend(fig) -> list[str]:
    """The entries of the figure's legend (one panel carries it), as drawn."""
    return [text.get_text() for ax in fig.axes if ax.get_legend() for text in ax.get_legend().get_texts()]


def _save(fig, plt, path: Path, drawn: dict[str, Any]) -> Path:
    """The PNG, and beside it the values read back from its artists (<name>.json)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    path.with_suffix(".json").write_text(json.dumps(drawn) + "\n")
    return path
