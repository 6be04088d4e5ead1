"""The eight GLUE tasks, from the hub (`nyu-mll/glue`) or from a local folder (`task.data_dir`).

The per-task facts (columns, number of labels, metrics, evaluation splits) live in conf/task/*.yaml; this
module only honours them. GLUE's test splits carry no labels (-1), so only train and the evaluation splits
are kept.
"""

from __future__ import annotations

from pathlib import Path

import datasets
from datasets import ClassLabel, DatasetDict

from adamix_runner.errors import UserError
from adamix_runner.sources.hub import load_hub_dataset
from adamix_runner.tasks.base import READERS, TaskData, build, files_in_dir, read_files, select_columns


def load(task_cfg, data_cfg) -> TaskData:
    wanted = ["train", *task_cfg.eval_splits]
    raw = _from_dir(Path(task_cfg.data_dir).expanduser(), wanted) if task_cfg.data_dir else _from_hub(task_cfg)
    absent = [s for s in wanted if s not in raw]
    if absent:
        raise UserError(f"GLUE {task_cfg.name}: split(s) {absent} not found; the data has {list(raw)}")
    splits = select_columns(DatasetDict({s: raw[s] for s in wanted}), task_cfg.text_fields, task_cfg.label_field)
    label_feature = splits["train"].features["label"]
    label_names = label_feature.names if isinstance(label_feature, ClassLabel) else None
    return build(task_cfg, data_cfg, splits, int(task_cfg.num_labels), label_names)


def _from_hub(task_cfg) -> DatasetDict:
    """The hub data set, from the local `datasets` cache alone when the hub is unreachable."""
    return load_hub_dataset(
        task_cfg.hub_id,
        task_cfg.subset,
        f"GLUE {task_cfg.name} ({task_cfg.hub_id}, {task_cfg.subset}) is not in the local datasets cache "
        f"and needs the Hugging Face hub, which is unreachable; pass "
        f"task.data_dir=/path/to/glue/{task_cfg.subset} instead (files train.*, validation.* as "
        f"{'/'.join(READERS)}, or a save_to_disk folder)",
    )


def _from_dir(data_dir: Path, wanted: list[str]) -> DatasetDict:
    """A `save_to_disk` folder, or one file set per split: `<split>.<ext>` or `<split>-*.<ext>`."""
    if not data_dir.is_dir():
        raise UserError(f"task.data_dir={data_dir} is not a folder; pass the folder that holds the GLUE files")
    if (data_dir / "dataset_dict.json").is_file():
        return datasets.load_from_disk(str(data_dir))
    files = {split: files_in_dir(data_dir, split) for split in wanted}
    empty = [split for split, found in files.items() if not found]
    if empty:
        raise UserError(
            f"task.data_dir={data_dir} has no file for split(s) {empty} (expected e.g. {empty[0]}.jsonl; "
            f"extensions {', '.join(READERS)}); it holds {sorted(p.name for p in data_dir.iterdir())}"
        )
    return read_files(files, hint=f"fix the files in task.data_dir={data_dir}")
