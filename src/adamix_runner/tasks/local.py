"""The user's own data: CSV, TSV, JSON(L) or parquet files named in task.data_files.

Classification takes integer ids 0..C-1 or strings (mapped to ids in sorted order, the names kept);
regression takes numbers and needs task.num_labels: 1. Left unset, num_labels is inferred: the number of
distinct strings, max id + 1 for integers, 1 (regression) for floats.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
from datasets import ClassLabel, DatasetDict, Value

from adamix_runner.errors import UserError
from adamix_runner.tasks.base import TaskData, build, read_files, select_columns, split_validation

HINT = "pass task.data_files.train=PATH (and optionally validation=PATH, test=PATH)"


def load(task_cfg, data_cfg) -> TaskData:
    files = {split: path for split, path in (task_cfg.data_files or {}).items() if path}
    splits, label_names = _read(task_cfg, files)
    count = _num_labels(task_cfg, splits["train"], label_names)
    splits = split_validation(splits, task_cfg.validation_fraction, task_cfg.split_seed)
    return build(task_cfg, data_cfg, splits, count, label_names)


def num_labels(task_cfg) -> int:
    """task.num_labels, or inferred from the train file alone."""
    if task_cfg.num_labels is not None:
        return int(task_cfg.num_labels)
    splits, label_names = _read(task_cfg, {"train": (task_cfg.data_files or {}).get("train")})
    return _num_labels(task_cfg, splits["train"], label_names)


def _read(task_cfg, files: dict) -> tuple[DatasetDict, list[str] | None]:
    """The selected columns of every split; string labels become class ids, names sorted over all splits."""
    if not files.get("train"):
        raise UserError(f"the local task needs a training file: {HINT}")
    splits = select_columns(read_files(files, HINT), tuple(task_cfg.text_fields), task_cfg.label_field)
    if splits["train"].features["label"] not in (Value("string"), Value("large_string")):
        return splits, None
    names = sorted({name for data in splits.values() for name in data.unique("label") if name is not None})
    labelled = {split: data.cast_column("label", ClassLabel(names=names)) for split, data in splits.items()}
    return DatasetDict(labelled), names


def _num_labels(task_cfg, train, label_names: list[str] | None) -> int:
    inferred = _infer(train, label_names)
    if task_cfg.num_labels is None:
        return inferred
    given = int(task_cfg.num_labels)
    if label_names is not None and given != len(label_names):
        raise UserError(
            f"task.num_labels={given}, but the labels are {len(label_names)} strings {label_names}; "
            f"set task.num_labels={len(label_names)} (or null to infer it)"
        )
    return given


def _infer(train, label_names: list[str] | None) -> int:
    if label_names is not None:
        return len(label_names)
    column = train.with_format("arrow")["label"]
    if pa.types.is_floating(column.type):
        return 1
    if not pa.types.is_integer(column.type):
        raise UserError(f"labels of type {column.type} are neither class ids, class names nor scores")
    highest = pc.max(column).as_py()
    if highest is None:
        raise UserError(f"the train split has no labels; {HINT}")
    return int(highest) + 1
