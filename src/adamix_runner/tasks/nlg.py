"""E2E, WebNLG 2017 and DART: the data of the NLG tables, linearised as the LoRA/AdaMix GPT-2 code does.

Sources, first found wins: `task.data_files.{train,validation,test}`, then `task.data_dir`, then the hub.
- E2E (original challenge data, Novikova et al. 2017: 42,061 / 4,672 / 4,693 pairs, 630 test MRs): the LoRA
  repo's `{train,valid,test}.txt` (`MR||reference`, already linearised and word-tokenized; exactly the paper's
  input), or the official `trainset.csv` / `devset.csv` / `testset_w_refs.csv` (columns mr, ref) and hub
  `tuetschek/e2e_nlg` (meaning_representation, human_reference), whose MRs `name[X], eatType[Y]` are rewritten
  `name : X | Type : Y` with the LoRA data's key names (their references are not re-tokenized).
- WebNLG 2017 challenge (the LoRA repo's `webnlg_challenge_2017/{train,dev,test}.json`, or hub
  `webnlg-challenge/web_nlg`, config `webnlg_challenge_2017`): modified triples `s : p : o` joined by ` | `,
  lexicalisations marked "good" only; a test input is "seen" when its category is one of the 10 training ones.
- DART v1.1.1 (`dart-v1.1.1-full-{train,dev,test}.json`, or hub `Yale-LILY/dart`): triples with the relation
  lowercased, every annotation a reference.
Train rows are (context, completion) pairs; evaluation rows hold one input with all its references (grouped by
identical context, as gpt2_decode.py does) and, for WebNLG, `seen`. The hub loaders follow the dataset cards'
schemas; offline they are not exercised.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path

from datasets import Dataset, DatasetDict

from adamix_runner.errors import UserError
from adamix_runner.sources.hub import load_hub_dataset
from adamix_runner.tasks.base import TaskData, check_primary_metric, truncate

# LoRA E2E data's attribute names (prefix-tuning's conversion of the challenge MRs)
E2E_KEYS = {"eatType": "Type", "priceRange": "price", "familyFriendly": "family friendly"}
# the 10 categories of the WebNLG 2017 training set (format_converting_webnlg.py); test adds 5 unseen ones
WEBNLG_SEEN = ("Airport", "Astronaut", "Building", "City", "ComicsCharacter")
WEBNLG_SEEN += ("Food", "Monument", "SportsTeam", "University", "WrittenWork")


@dataclass(frozen=True)
class Family:
    protocol: str  # nlg_metrics protocol: e2e (measure_scores.py) or webnlg (GenerationEval)
    max_prompt_length: int  # official eval --seq_len minus --eval_len 64: the query keeps its last tokens
    files: dict[str, tuple[str, ...]]  # our split -> file names in task.data_dir, first found wins
    hub_splits: dict[str, str]


FAMILIES = {
    "e2e": Family(
        "e2e",
        128 - 64,
        {
            "train": ("train.txt", "trainset.csv"),
            "validation": ("valid.txt", "devset.csv"),
            "test": ("test.txt", "testset_w_refs.csv"),
        },
        {"train": "train", "validation": "validation", "test": "test"},
    ),
    "webnlg": Family(
        "webnlg",
        256 - 64,
        {"train": ("train.json",), "validation": ("dev.json",), "test": ("test.json",)},
        {"train": "train", "validation": "dev", "test": "test"},
    ),
    "dart": Family(
        "webnlg",
        256 - 64,
        {
            s: (f"dart-v1.1.1-full-{f}.json", f"{f}.json")
            for s, f in (("train", "train"), ("validation", "dev"), ("test", "test"))
        },
        {"train": "train", "validation": "validation", "test": "test"},
    ),
}


def linearise_e2e(mr: str) -> str:
    """`name[The Eagle], eatType[coffee shop]` -> `name : The Eagle | Type : coffee shop`."""
    pairs = re.findall(r"\s*([^\[\],]+?)\s*\[([^\]]*)\]", mr)
    if not pairs:
        raise UserError(f"E2E meaning representation {mr!r} is not of the form 'key[value], key[value]'")
    return " | ".join(f"{E2E_KEYS.get(key, key)} : {value}" for key, value in pairs)


def linearise_triples(triples, lower_relation: bool = False) -> str:
    """[(s, p, o), ...] -> `s : p : o | s : p : o` (DART lowercases p, WebNLG keeps it)."""
    return " | ".join(f"{s} : {p.lower() if lower_relation else p} : {o}" for s, p, o in triples)


def _e2e_records(path: Path) -> list[dict]:
    if path.suffix == ".txt":
        rows = [line.strip().split("||") for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        return [{"context": row[0], "references": [row[1]]} for row in rows]
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return [{"context": linearise_e2e(r["mr"]), "references": [r["ref"]]} for r in csv.DictReader(handle)]


def _webnlg_records(path: Path) -> list[dict]:
    entries = json.loads(path.read_text(encoding="utf-8"))["entries"]
    records = []
    for entry in (next(iter(e.values())) for e in entries):
        triples = [(t["subject"], t["property"], t["object"]) for t in entry["modifiedtripleset"]]
        refs = [lex["lex"] for lex in entry["lexicalisations"] if lex["comment"] == "good"]
        records.append(
            {"context": linearise_triples(triples), "references": refs, "seen": entry["category"] in WEBNLG_SEEN}
        )
    return records


def _dart_records(path: Path) -> list[dict]:
    return [
        {"context": linearise_triples(e["tripleset"], True), "references": [a["text"] for a in e["annotations"]]}
        for e in json.loads(path.read_text(encoding="utf-8"))
    ]


def _hub_record(family: str, row: dict) -> dict:
    """A hub row in the local files' record form (schemas of tuetschek/e2e_nlg, web_nlg, Yale-LILY/dart)."""
    if family == "e2e":
        return {"context": linearise_e2e(row["meaning_representation"]), "references": [row["human_reference"]]}
    if family == "webnlg":
        triples = [tuple(t.split(" | ")) for t in row["modified_triple_sets"]["mtriple_set"][0]]
        lex = row["lex"]
        refs = [text for text, comment in zip(lex["text"], lex["comment"], strict=True) if comment == "good"]
        return {"context": linearise_triples(triples), "references": refs, "seen": row["category"] in WEBNLG_SEEN}
    return {"context": linearise_triples(row["tripleset"], True), "references": list(row["annotations"]["text"])}


READERS = {"e2e": _e2e_records, "webnlg": _webnlg_records, "dart": _dart_records}


def _from_files(task_cfg, family: Family, splits: list[str]) -> dict[str, list[dict]] | None:
    given = {s: p for s, p in (task_cfg.data_files or {}).items() if p and s in splits}
    if not given and not task_cfg.data_dir:
        return None
    paths = {}
    for split in splits:
        if split in given:
            paths[split] = Path(given[split]).expanduser()
        elif task_cfg.data_dir:
            folder = Path(task_cfg.data_dir).expanduser()
            found = [folder / name for name in family.files[split] if (folder / name).is_file()]
            paths[split] = found[0] if found else folder / family.files[split][0]
        else:
            raise UserError(f"{task_cfg.name}: no file for split {split!r}; set task.data_files.{split}=PATH")
        if not paths[split].is_file():
            raise UserError(
                f"{task_cfg.name} {split} file not found: {paths[split]} (expected one of {family.files[split]} "
                f"in task.data_dir, or task.data_files.{split}=PATH)"
            )
    try:
        return {split: READERS[task_cfg.family](path) for split, path in paths.items()}
    except (KeyError, ValueError, IndexError, TypeError) as err:
        raise UserError(f"{task_cfg.name}: could not read {paths}: {type(err).__name__}: {err}") from err


def _from_hub(task_cfg, family: Family, splits: list[str]) -> dict[str, list[dict]]:
    data = load_hub_dataset(
        task_cfg.hub_id,
        task_cfg.subset,
        f"{task_cfg.name} ({task_cfg.hub_id}) is not in the local datasets cache and the hub is unreachable; "
        f"pass task.data_dir=/path/to/{task_cfg.name} (files {family.files}) instead",
    )
    return {s: [_hub_record(task_cfg.family, row) for row in data[family.hub_splits[s]]] for s in splits}


def _grouped(records: list[dict]) -> Dataset:
    """One row per distinct context, references in order of appearance."""
    groups: dict[str, dict] = {}
    for record in records:
        group = groups.setdefault(record["context"], {**record, "references": []})
        group["references"].extend(record["references"])
    return Dataset.from_list([g for g in groups.values() if g["references"]])


def load(task_cfg, data_cfg) -> TaskData:
    family = FAMILIES[task_cfg.family]
    eval_splits = tuple(task_cfg.eval_splits)
    check_primary_metric(task_cfg)
    unknown = sorted(set(("train", *eval_splits)) - set(family.files))
    if unknown:
        raise UserError(f"{task_cfg.name} has splits {sorted(family.files)}, not {unknown}")
    wanted = ["train", *eval_splits]
    records = _from_files(task_cfg, family, wanted) or _from_hub(task_cfg, family, wanted)
    pairs = [{"context": r["context"], "completion": ref} for r in records["train"] for ref in r["references"]]
    splits = DatasetDict({"train": Dataset.from_list(pairs), **{s: _grouped(records[s]) for s in eval_splits}})
    splits = truncate(splits, data_cfg)
    return TaskData(
        name=task_cfg.name,
        kind="generation",
        splits=splits,
        text_fields=("context",),
        num_labels=0,
        eval_splits=eval_splits,
        metrics=tuple(task_cfg.metrics),
        primary_metric=task_cfg.primary_metric,
        protocol=family.protocol,
        max_prompt_length=family.max_prompt_length,
    )
