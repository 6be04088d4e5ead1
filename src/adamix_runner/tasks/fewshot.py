"""Few-shot splits for prompt-based tasks: the LiST / LM-BFF folders as they are, or K rows sampled from a pool.

With ``fewshot.data_dir`` the split is ``<data_dir>/<task.prompt.list_folder>/<K>-<split_seed>/``: ``train.*`` (K
labelled rows) and the full evaluation file (``test.*``; MNLI ``test_matched.tsv``). When that file is missing
(the MNLI and QQP GLUE dev files are not in the public LiST copy) the CLUES subset ``test_clue.*`` is evaluated
instead and the run's results.json says so under ``notes``. File formats (fewshot reference §2.2) are in
``LIST_LAYOUT``; TSV files are read as GLUE's processors read them (no quote handling), CSV files as CSV.

Without it, the task's own family loads the pool (GLUE or any hub data set, the polarity corpus, local files) and
K training rows are sampled from its train split: a seeded shuffle (seed ``split_seed``) then the first K, over the
whole pool (K in total, not per class, not stratified: how the LiST splits look, §2.2). The evaluation splits
stay whole; ``fewshot.eval_shuffle=<seed>`` shuffles their rows first, so that ``data.max_eval_samples`` (the
first n rows) is a random subset: LiST's Subj and MPQA test files are sorted by class (their first rows are all
class 0). ``fewshot.k=null`` keeps every training row (your own few-shot file).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, replace
from importlib import import_module
from pathlib import Path

import datasets
from datasets import ClassLabel, DatasetDict
from omegaconf import OmegaConf

from adamix_runner.errors import OfflineError, UserError
from adamix_runner.tasks.base import TaskData, build


@dataclass(frozen=True)
class ListFile:
    """One file of a LiST task folder: header or not, text columns and label column (names or indices)."""

    header: bool
    texts: tuple[str | int, ...]
    label: str | int


_SINGLE = ListFile(False, (0,), 1)
_CSV = ListFile(False, (1,), 0)
_RTE = ListFile(True, ("sentence1", "sentence2"), "label")
_QQP = ListFile(True, ("question1", "question2"), "is_duplicate")

# task folder -> (extension, full evaluation file stem, {file stem: format})
LIST_LAYOUT: dict[str, tuple[str, str, dict[str, ListFile]]] = {
    "SST-2": (
        ".tsv",
        "test",
        {"train": _SINGLE, "test": ListFile(True, ("sentence",), "label"), "test_clue": _SINGLE},
    ),
    "MNLI": (
        ".tsv",
        "test_matched",
        {
            "train": ListFile(False, (2, 3), 4),  # id, genre, premise, hypothesis, label
            "test_matched": ListFile(True, ("sentence1", "sentence2"), "gold_label"),  # GLUE dev_matched
            "test_clue": ListFile(True, ("Sentence_1", "Sentence_2"), "@RealTimeAuditComment"),
        },
    ),
    "QQP": (".tsv", "test", {"train": _QQP, "test": _QQP, "test_clue": _QQP}),
    "RTE": (".tsv", "test", {"train": _RTE, "test": _RTE, "test_clue": _RTE}),
    "mpqa": (".csv", "test", {"train": _CSV, "test": _CSV, "test_clue": _CSV}),
    "subj": (".csv", "test", {"train": _CSV, "test": _CSV, "test_clue": _CSV}),
}
CLUE_NOTE = (
    "evaluated on {file}, the CLUES subset ({rows} rows), because {missing} is not in {folder}: not the paper's "
    "evaluation set"
)


@dataclass(frozen=True)
class FewShot:
    """The resolved ``fewshot`` settings of a run."""

    k: int | None
    split_seed: int
    data_dir: str | None
    eval_shuffle: int | None = None


def options(fewshot_cfg, seed: int) -> FewShot:
    """``split_seed`` null -> ``seed + 1``: the tables' seeds 0..4 read LiST's splits 1..5."""
    split_seed = fewshot_cfg.split_seed if fewshot_cfg.split_seed is not None else seed + 1
    return FewShot(fewshot_cfg.k, int(split_seed), fewshot_cfg.data_dir, fewshot_cfg.get("eval_shuffle"))


TRAIN_SEEDS = ("run", "split")


def training_seed(cfg) -> int:
    """The seed that initialises and shuffles a run: ``seed``, or with ``fewshot.train_seed=split`` on a prompt task
    the split's own id, as LiST trains split k with seed k (its run.sh L111, L139; fidelity audit D-A6)."""
    if cfg.task.prompt.template is not None and cfg.fewshot.get("train_seed", "run") == "split":
        return options(cfg.fewshot, cfg.seed).split_seed
    return cfg.seed


def load(task_cfg, data_cfg, fewshot: FewShot) -> TaskData:
    prompt = task_cfg.prompt
    names = list(prompt.label_names) if prompt.label_names else None
    if fewshot.data_dir:
        splits, notes = _from_list(task_cfg, fewshot)
    else:
        splits, notes = _from_pool(task_cfg, data_cfg, fewshot), {}
    splits = DatasetDict({s: _as_class_ids(d, names, s) for s, d in splits.items()})
    if fewshot.eval_shuffle is not None:
        shuffled = {s: splits[s].shuffle(seed=fewshot.eval_shuffle) for s in task_cfg.eval_splits}
        splits = DatasetDict({**splits, **shuffled})
    feature = splits["train"].features["label"]
    names = names or (feature.names if isinstance(feature, ClassLabel) else None)
    if prompt.lowercase:  # LiST's MNLI processors lower-case premise and hypothesis
        fields = list(task_cfg.text_fields)
        splits = splits.map(lambda row: {f: row[f].lower() for f in fields}, desc="Lower-casing")
    task = build(task_cfg, data_cfg, splits, len(prompt.label_words), names)
    return replace(task, kind="prompt", notes=notes)


def _as_class_ids(data: datasets.Dataset, names: list[str] | None, split: str) -> datasets.Dataset:
    """String labels (LiST files, hub label_text columns) become class ids by their place in label_names."""
    if isinstance(data.features["label"], ClassLabel) or data.features["label"].dtype.startswith("int"):
        return data
    if names is None:
        raise UserError(f"{split} labels are strings {data.unique('label')[:5]}; set task.prompt.label_names")
    unknown = sorted(set(data.unique("label")) - set(names))
    if unknown:
        raise UserError(f"{split} has labels {unknown} that are not in task.prompt.label_names={names}")
    return data.cast_column("label", ClassLabel(names=names))


def _from_pool(task_cfg, data_cfg, fewshot: FewShot) -> DatasetDict:
    family = import_module(f"adamix_runner.tasks.{task_cfg.family}")
    whole = OmegaConf.create({"max_train_samples": None, "max_eval_samples": None})  # sample from the whole pool
    try:
        pool = family.load(task_cfg, whole).splits
    except OfflineError as error:
        raise OfflineError(f"{error} Or pass fewshot.data_dir=<a LiST data/clue folder> for LiST's splits.") from error
    train = pool["train"]
    if fewshot.k is not None:
        if fewshot.k > len(train):
            raise UserError(f"fewshot.k={fewshot.k} exceeds the {len(train)} training rows of {task_cfg.name}")
        train = train.shuffle(seed=fewshot.split_seed).select(range(fewshot.k))
    return DatasetDict({**pool, "train": train})


def _from_list(task_cfg, fewshot: FewShot) -> tuple[DatasetDict, dict[str, str]]:
    """The train file and the evaluation file of one LiST split folder; the evaluation rows go to the task's
    (single) evaluation split name, so that the metric names do not depend on where the data came from."""
    folder_name = task_cfg.prompt.list_folder
    if folder_name not in LIST_LAYOUT:
        raise UserError(
            f"task {task_cfg.name} has no LiST folder (task.prompt.list_folder={folder_name!r}, known: "
            f"{', '.join(LIST_LAYOUT)}); unset fewshot.data_dir to sample from the task's own data"
        )
    if fewshot.k is None:
        raise UserError("fewshot.k=null reads no LiST folder; set fewshot.k (the folders are <K>-<seed>)")
    ext, full, formats = LIST_LAYOUT[folder_name]
    root = Path(fewshot.data_dir).expanduser()
    folder = root / folder_name / f"{fewshot.k}-{fewshot.split_seed}"
    if not folder.is_dir():
        found = sorted(p.name for p in (root / folder_name).iterdir()) if (root / folder_name).is_dir() else []
        raise UserError(
            f"few-shot split folder {folder} not found (fewshot.k={fewshot.k}, fewshot.split_seed="
            f"{fewshot.split_seed}); {root / folder_name} holds {found or 'nothing'}. Pass fewshot.data_dir=<the "
            f"LiST data/clue folder> or unset it to sample from the hub"
        )
    fields = list(task_cfg.text_fields)
    train = _read_list_file(folder / f"train{ext}", formats["train"], fields)
    if len(train) != fewshot.k:
        raise UserError(f"{folder / ('train' + ext)} has {len(train)} rows, expected fewshot.k={fewshot.k}")
    evaluated, notes = full, {}
    if not (folder / f"{full}{ext}").is_file():
        evaluated = "test_clue"
    evaluation = _read_list_file(folder / f"{evaluated}{ext}", formats[evaluated], fields)
    if evaluated != full:
        notes["eval_set"] = CLUE_NOTE.format(
            file=f"{evaluated}{ext}", rows=len(evaluation), missing=f"{full}{ext}", folder=folder
        )
    labels = list(task_cfg.prompt.list_labels)
    splits = {"train": train, task_cfg.eval_splits[0]: evaluation}
    for split, data in splits.items():
        unknown = sorted(set(data.unique("label")) - set(labels))
        if unknown:
            raise UserError(f"{folder} {split} labels {unknown} are not in task.prompt.list_labels={labels}")
    mapped = {s: d.map(lambda row: {"label": labels.index(row["label"])}) for s, d in splits.items()}
    return DatasetDict(mapped), notes


def _read_list_file(path: Path, layout: ListFile, fields: list[str]) -> datasets.Dataset:
    if not path.is_file():
        raise UserError(f"few-shot file {path} not found; the LiST layout is <TASK>/<K>-<seed>/train.*, test.*")
    with path.open(encoding="utf-8-sig", newline="") as handle:
        tsv = path.suffix == ".tsv"
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE) if tsv else csv.reader(handle)
        rows = [row for row in reader if row]
    header = rows.pop(0) if layout.header else None

    def column(key: str | int) -> int:
        if isinstance(key, int):
            return key
        if key not in header:
            raise UserError(f"{path} has no column {key!r}; its header is {header}")
        return header.index(key)

    positions = [column(key) for key in layout.texts]
    label = column(layout.label)
    short = [i for i, row in enumerate(rows) if len(row) <= max(*positions, label)]
    if short:
        raise UserError(f"{path}: row {short[0] + 1 + layout.header} has too few columns for the LiST format")
    data = {field: [row[p] for row in rows] for field, p in zip(fields, positions, strict=True)}
    return datasets.Dataset.from_dict({**data, "label": [row[label].strip() for row in rows]})
