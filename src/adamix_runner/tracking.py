"""Where a run reports: the console (rich), `metrics.jsonl` and Weights & Biases, behind one Tracker interface.

`build_tracker` turns `logger.kinds` into one tracker that fans out to each. A step below 0 marks metrics
measured after training (the final evaluation): the console prints them as "final", wandb stores them in the run
summary (its step counter only goes forward).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from rich import console as rich_console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.tree import Tree

from adamix_runner.errors import UserError
from adamix_runner.run_folder import METRICS

TRAIN_PREFIX = "train/"
# The console leaves these to the progress bar and to the "resumed from" line that the loop prints itself.
QUIET_PREFIXES = (TRAIN_PREFIX, "resumed/")


class Tracker(Protocol):
    def log(self, metrics: Mapping[str, float], step: int) -> None: ...

    def close(self, status: str) -> None: ...


class JsonlTracker:
    """One JSON object per call appended to `metrics.jsonl`; append mode lets a resumed run continue the file."""

    def __init__(self, run_dir: Path) -> None:
        run_dir.mkdir(parents=True, exist_ok=True)
        self.path = run_dir / METRICS
        self._file = self.path.open("a", encoding="utf-8")

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        record = {"step": int(step), "time": time.time(), **metrics}
        self._file.write(json.dumps(record, default=float) + "\n")
        self._file.flush()

    def close(self, status: str) -> None:
        self._file.close()


def _format(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _add_branches(tree: Tree, config: Mapping) -> None:
    for key, value in config.items():
        if isinstance(value, Mapping) and value:
            _add_branches(tree.add(f"[bold]{key}[/]"), value)
        else:
            tree.add(f"{key}: [cyan]{value!r}[/]")


class Console:
    """Rich output for people: the config tree, a training progress bar, evaluation lines and the results table.

    On a terminal the progress bar redraws in place; elsewhere (CI, a log file) it would only show at the end, so
    `update_progress` prints a plain line at each tenth of the run instead.
    """

    def __init__(self, console: rich_console.Console | None = None) -> None:
        self.console = console or rich_console.Console()
        self._progress: Progress | None = None
        self._total = 0
        self._last_tenth = 0

    def print_config_tree(self, config: Mapping) -> None:
        tree = Tree("[bold]config[/]")
        _add_branches(tree, config)
        self.console.print(tree)

    def start_progress(self, total_steps: int, completed: int = 0) -> None:
        self._total, self._last_tenth = total_steps, completed * 10 // max(total_steps, 1)
        if not self.console.is_terminal:
            return
        self._progress = Progress(
            TextColumn("train"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[stats]}"),
            console=self.console,
        )
        self._progress.add_task("train", total=total_steps, completed=completed, stats="")
        self._progress.start()

    def update_progress(self, step: int, loss: float, lr: float, samples_per_s: float) -> None:
        stats = f"loss {loss:.4f}  lr {lr:.2e}  {samples_per_s:.1f} samples/s"
        if self._progress is not None:
            self._progress.update(self._progress.task_ids[0], completed=step, stats=stats)
            return
        tenth = step * 10 // max(self._total, 1)
        if tenth > self._last_tenth or step == self._total:
            self._last_tenth = tenth
            self.console.print(f"step {step}/{self._total}  {stats}", highlight=False)

    def stop_progress(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def print_results_table(self, rows: list[tuple[str, str]], title: str) -> None:
        table = Table(title=title)
        table.add_column("")
        table.add_column("value", justify="right")
        for name, value in rows:
            table.add_row(name, value)
        self.console.print(table)

    def print_parameters(self, counts) -> None:
        """The parameter counts of the built model (adaptation.count_parameters)."""
        rows = [(name, f"{getattr(counts, name):,}") for name in ("trainable", "inference", "backbone", "head")]
        self.print_results_table(rows, title="parameters")

    def print_summary(self, record: Mapping[str, Any]) -> None:
        """A run's results.json record: its metrics, parameter counts and timings."""
        rows = [(name, f"{value:.4f}") for name, value in record["metrics"].items()]
        rows += [(f"#params {name}", f"{value:,}") for name, value in record["params"].items()]
        rows += [(f"time {name}", f"{value:.1f} s") for name, value in record["timing"].items()]
        self.print_results_table(rows, title=f"{record['status']}: {record['task']} / {record['model']}")

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        """Evaluation metrics as one line; training steps are the progress bar's business."""
        shown = {key: value for key, value in metrics.items() if not key.startswith(QUIET_PREFIXES)}
        if shown:
            where = f"step {step}" if step >= 0 else "final"
            self.console.print(f"{where}: " + "  ".join(f"{k} {_format(v)}" for k, v in shown.items()))

    def close(self, status: str) -> None:
        self.stop_progress()


def wandb_run_id(run_dir: Path) -> str:
    """Stable across reruns of the same folder, so `resume="allow"` continues the same wandb run."""
    return hashlib.sha1(str(run_dir.resolve()).encode()).hexdigest()[:16]


class WandbTracker:
    """A wandb run; WANDB_MODE from the environment decides online, offline (no network) or disabled."""

    def __init__(
        self,
        run_dir: Path,
        config: dict,
        *,
        project: str = "adamix-runner",
        entity: str | None = None,
        name: str | None = None,
        group: str | None = None,
        tags: Sequence[str] = (),
    ) -> None:
        try:
            import wandb
        except ImportError as error:
            raise UserError("logger=wandb needs the wandb package: pip install wandb") from error
        run_dir.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(
            project=project,
            entity=entity,
            name=name,
            group=group,
            tags=list(tags),
            config=config,
            dir=str(run_dir),
            resume="allow",
            id=wandb_run_id(run_dir),
            # Read per run: wandb otherwise keeps the mode of the process's first run (Hydra multirun, tests).
            mode=os.environ.get("WANDB_MODE"),
        )

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        if step < 0:
            self.run.summary.update(dict(metrics))
        else:
            self.run.log(dict(metrics), step=step)

    def close(self, status: str) -> None:
        self.run.finish(exit_code=0 if status == "completed" else 1)


class CompositeTracker:
    """Fans each call out to every tracker; `console` is the rich Console among them, or None. The `show_*` views
    go to that console and are skipped without one (logger.kinds without console, a rank other than 0)."""

    def __init__(self, trackers: Sequence[Tracker]) -> None:
        self.trackers = list(trackers)
        self.console = next((t for t in self.trackers if isinstance(t, Console)), None)

    def show_config(self, config: Mapping) -> None:
        if self.console is not None:
            self.console.print_config_tree(config)

    def show_parameters(self, counts) -> None:
        if self.console is not None:
            self.console.print_parameters(counts)

    def show_summary(self, record: Mapping[str, Any]) -> None:
        if self.console is not None:
            self.console.print_summary(record)

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        for tracker in self.trackers:
            tracker.log(metrics, step)

    def close(self, status: str) -> None:
        """Close every tracker even if one fails; the first failure is raised afterwards."""
        errors = []
        for tracker in self.trackers:
            try:
                tracker.close(status)
            except Exception as error:
                errors.append(error)
        if errors:
            raise errors[0]


def build_tracker(
    kinds: Sequence[str], run_dir: Path, config: dict, *, wandb_options: Mapping | None = None
) -> CompositeTracker:
    """One tracker for `kinds` (each of console, jsonl, wandb, at most once, in the given order)."""
    builders = {
        "console": Console,
        "jsonl": lambda: JsonlTracker(run_dir),
        "wandb": lambda: WandbTracker(run_dir, config, **dict(wandb_options or {})),
    }
    unknown = [kind for kind in kinds if kind not in builders]
    if unknown:
        raise UserError(f"unknown logger kind(s) {unknown}; choose from {sorted(builders)}")
    built: list[Tracker] = []
    try:
        for kind in dict.fromkeys(kinds):
            built.append(builders[kind]())
    except BaseException:
        CompositeTracker(built).close("failed")
        raise
    return CompositeTracker(built)
