"""TaskData, the interface every task family fills, and the checks they all share.

A family reads its raw splits its own way, then hands them to `select_columns`, `split_validation` and
`build`, so that every family reports missing columns, bad labels and empty splits the same way.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.compute as pc
from datasets import ClassLabel, DatasetDict, Value

from adamix_runner.errors import UserError

# file extension -> (datasets builder, its keyword arguments)
READERS: dict[str, tuple[str, dict[str, str]]] = {
    ".csv": ("csv", {}),
    ".tsv": ("csv", {"sep": "\t"}),
    ".json": ("json", {}),
    ".jsonl": ("json", {}),
    ".parquet": ("parquet", {}),
}


@dataclass
class TaskData:
    """Raw splits and the evaluation plan of one task.

    `kind` says what the model does with it: "classification" (regression included, num_labels == 1), or
    "generation" (tasks/nlg.py: train rows (context, completion), evaluation rows (context, references) scored
    under the nlg_metrics `protocol`, prompts cut to their last `max_prompt_length` tokens; num_labels 0), or
    "prompt" (tasks/fewshot.py: classification rows read through a template by an LM head). `notes` are facts
    about the data that the run's results.json must carry (e.g. a substitute evaluation set).
    """

    name: str
    kind: str
    splits: DatasetDict
    text_fields: tuple[str, ...]
    num_labels: int
    eval_splits: tuple[str, ...]
    metrics: tuple[str, ...]
    primary_metric: str
    label_names: list[str] | None = None
    protocol: str | None = None
    max_prompt_length: int | None = None
    prediction_min: float | None = None  # regression predictions are clipped below this at evaluation
    notes: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def is_regression(self) -> bool:
        return self.num_labels == 1


def read_files(files: Mapping[str, str | Path | list[Path]], hint: str) -> DatasetDict:
    """One split per entry, read by the files' extension; `hint` tells the user what to pass instead."""
    splits = {}
    for split, given in files.items():
        paths = [Path(p).expanduser() for p in (given if isinstance(given, list) else [given])]
        folders = [str(p) for p in paths if p.is_dir()]
        if folders:
            raise UserError(f"{split} data file {', '.join(folders)} is a folder, not a file; {hint}")
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise UserError(f"{split} data file not found: {', '.join(missing)}; {hint}")
        empty = [str(p) for p in paths if p.stat().st_size == 0]
        if empty:
            raise UserError(f"{split} data file {', '.join(empty)} is empty (0 bytes); {hint}")
        suffixes = {p.suffix.lower() for p in paths}
        if len(suffixes) != 1 or next(iter(suffixes)) not in READERS:
            raise UserError(
                f"{split} data files {[str(p) for p in paths]} must share one extension among "
                f"{', '.join(READERS)}; {hint}"
            )
        builder, options = READERS[suffixes.pop()]
        try:
            splits[split] = datasets.load_dataset(
                builder, data_files={split: [str(p) for p in paths]}, split=split, **options
            )
        except Exception as err:
            reason = f"{type(err).__name__}: {err}"
            raise UserError(f"could not read {split} data {[str(p) for p in paths]} ({reason}); {hint}") from err
    return DatasetDict(splits)


def files_in_dir(data_dir: Path, split: str) -> list[Path]:
    """The files of `split` in a folder: stem `split`, or `split` and a non-word character (train-0-of-2)."""
    pattern = re.compile(rf"{re.escape(split)}(\W|$)")
    return sorted(
        p for p in data_dir.iterdir() if p.is_file() and p.suffix.lower() in READERS and pattern.match(p.stem)
    )


def select_columns(splits: DatasetDict, text_fields: tuple[str, ...], label_field: str) -> DatasetDict:
    """Keep the text fields and the label (renamed "label"); name what is missing and what is there."""
    wanted = [*text_fields, label_field]
    for split, data in splits.items():
        missing = [c for c in wanted if c not in data.column_names]
        if missing:
            raise UserError(
                f"{split} split lacks column(s) {missing}; it has {data.column_names}. Set task.text_fields "
                f"and task.label_field to the columns of your data."
            )
    splits = DatasetDict({s: d.select_columns(wanted) for s, d in splits.items()})
    return splits.rename_column(label_field, "label") if label_field != "label" else splits


def split_validation(splits: DatasetDict, fraction: float, seed: int) -> DatasetDict:
    """Hold out a seeded `fraction` of train as validation when no validation split was given.

    The split is stratified when the labels are classes and every class has two rows or more.
    """
    if "validation" in splits:
        return splits
    train = splits["train"]
    if not 0 < fraction < 1 or len(train) < 2:
        raise UserError(
            f"no validation split: pass task.data_files.validation=PATH, or set task.validation_fraction "
            f"in (0, 1) with at least 2 training rows (now {fraction} and {len(train)} rows)"
        )
    stratify = isinstance(train.features["label"], ClassLabel)
    try:
        parts = train.train_test_split(test_size=fraction, seed=seed, stratify_by_column="label" if stratify else None)
    except ValueError:  # a class with a single row cannot be stratified
        parts = train.train_test_split(test_size=fraction, seed=seed)
    return DatasetDict({**splits, "train": parts["train"], "validation": parts["test"]})


def truncate(splits: DatasetDict, data_cfg) -> DatasetDict:
    """The first n rows of each split, as HF run_glue's max_train_samples / max_eval_samples; none may be empty."""
    out = {}
    for split, data in splits.items():
        limit = data_cfg.max_train_samples if split == "train" else data_cfg.max_eval_samples
        out[split] = data.select(range(min(limit, len(data)))) if limit is not None else data
        if len(out[split]) == 0:
            raise UserError(f"{split} split is empty; give it rows (or raise data.max_*_samples above 0)")
    return DatasetDict(out)


def check_primary_metric(task_cfg) -> None:
    """`task.primary_metric` must name an evaluated split and a computed metric: `<split>/<metric>`."""
    eval_splits = list(task_cfg.eval_splits)
    metric_split, _, metric = task_cfg.primary_metric.partition("/")
    if metric_split not in eval_splits or metric not in task_cfg.metrics:
        raise UserError(
            f"task.primary_metric={task_cfg.primary_metric!r} must be '<split>/<metric>' with a split of "
            f"task.eval_splits {eval_splits} and a metric of task.metrics {list(task_cfg.metrics)}"
        )


def _check_labels(split: str, column: pa.ChunkedArray, num_labels: int) -> None:
    if column.null_count:
        raise UserError(f"{split} split has {column.null_count} row(s) without a label; remove them")
    if num_labels == 1:
        if not (pa.types.is_floating(column.type) or pa.types.is_integer(column.type)):
            raise UserError(f"{split} labels are {column.type}; regression (num_labels: 1) needs numbers")
        return
    if not pa.types.is_integer(column.type):
        raise UserError(
            f"{split} labels are {column.type}; classification needs integer ids 0..{num_labels - 1} "
            f"(string labels are mapped to ids by the local task), or set task.num_labels=1 for regression"
        )
    low, high = (v.as_py() for v in pc.min_max(column).values())
    if low < 0 or high >= num_labels:
        raise UserError(
            f"{split} labels span {low}..{high}, outside 0..{num_labels - 1} for num_labels={num_labels} "
            f"(-1 marks GLUE's hidden test labels: evaluate on a labelled split); fix the data or "
            f"task.num_labels"
        )


def build(task_cfg, data_cfg, splits: DatasetDict, num_labels: int, label_names: list[str] | None = None) -> TaskData:
    """Truncate, check (non-empty splits, texts present, labels in range) and cast the label column."""
    eval_splits = tuple(task_cfg.eval_splits)
    absent = [s for s in ("train", *eval_splits) if s not in splits]
    if absent:
        raise UserError(f"split(s) {absent} not found; the data has {list(splits)}. Check task.eval_splits.")
    check_primary_metric(task_cfg)
    text_fields = tuple(task_cfg.text_fields)
    label_type = Value("float32") if num_labels == 1 else ClassLabel(num_classes=num_labels, names=label_names)
    out = {}
    for split, data in truncate(splits, data_cfg).items():
        table = data.with_format("arrow")[:]
        for field in text_fields:
            if table.column(field).null_count:
                raise UserError(f"{split} split has rows with an empty {field!r}; fill or remove them")
        _check_labels(split, table.column("label"), num_labels)
        out[split] = data.cast_column("label", label_type)
    return TaskData(
        name=task_cfg.name,
        kind="classification",
        splits=DatasetDict(out),
        text_fields=text_fields,
        num_labels=num_labels,
        eval_splits=eval_splits,
        metrics=tuple(task_cfg.metrics),
        primary_metric=task_cfg.primary_metric,
        label_names=label_names,
        prediction_min=task_cfg.get("prediction_min"),
    )
