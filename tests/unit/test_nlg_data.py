"""NLG data: the three loaders on their fixtures, the official linearisation, LM encoding and the GPT-2 BPE."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoTokenizer

from adamix_runner import tasks
from adamix_runner.errors import OfflineError, UserError
from adamix_runner.models.tokenizer_assets import gpt2_tokenizer_path
from adamix_runner.tasks.encode_lm import IGNORE, LMCollator, encode_pairs, left_pad, prompt_ids
from adamix_runner.tasks.nlg import linearise_e2e, linearise_triples
from tests.conftest import FIXTURES, compose_config

NLG = FIXTURES / "nlg"


@pytest.fixture(scope="module")
def gpt2_tokenizer():
    return AutoTokenizer.from_pretrained(gpt2_tokenizer_path())


def _load(task: str, *overrides: str):
    cfg = compose_config(f"task={task}", f"task.data_dir={NLG / task}", *overrides)
    return tasks.load(cfg.task, cfg.data)


def test_gpt2_tokenizer_is_the_real_bpe(gpt2_tokenizer):
    assert len(gpt2_tokenizer) == 50257 and gpt2_tokenizer.eos_token_id == 50256
    assert gpt2_tokenizer("Hello world")["input_ids"] == [15496, 995]  # tiktoken r50k_base
    assert gpt2_tokenizer.encode("\n\n") == [628]  # the official --eos_token_id 628


def test_linearisation_matches_the_lora_data():
    mr = "name[The Eagle], eatType[coffee shop], priceRange[less than £20], familyFriendly[yes], near[Burger King]"
    expected = (
        "name : The Eagle | Type : coffee shop | price : less than £20 | family friendly : yes | near : Burger King"
    )
    assert linearise_e2e(mr) == expected
    assert linearise_triples([("Aarhus", "leaderName", "Jacob_Bundsgaard"), ("A", "B", "C")]) == (
        "Aarhus : leaderName : Jacob_Bundsgaard | A : B : C"
    )
    assert linearise_triples([("A", "HOME_TOWN", "C")], lower_relation=True) == "A : home_town : C"
    with pytest.raises(UserError, match="key\\[value\\]"):
        linearise_e2e("just text")


def test_e2e_csv_fixture_pairs_for_training_and_grouped_references_for_test():
    task = _load("e2e")
    assert (task.kind, task.protocol, task.max_prompt_length, task.num_labels) == ("generation", "e2e", 64, 0)
    train, test = task.splits["train"], task.splits["test"]
    assert train.column_names == ["context", "completion"] and len(train) == 48  # 24 MRs x 2 references
    assert len(test) == 6 and all(2 <= len(refs) <= 3 for refs in test["references"])
    assert test[0]["context"].startswith("name : ") and " | Type : " in test[0]["context"]
    assert tasks.kind(compose_config("task=e2e").task) == "generation"
    assert tasks.num_labels(compose_config("task=e2e").task) == 0


def test_e2e_lora_text_format_and_sample_limits(tmp_path):
    lines = ["name : A | Type : pub||A is a pub .", "name : A | Type : pub||A , a pub .", "name : B||B ."]
    (tmp_path / "test.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "train.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    task = _load("e2e", f"task.data_dir={tmp_path}", "data.max_eval_samples=1")
    assert task.splits["test"][:] == {
        "context": ["name : A | Type : pub"],
        "references": [["A is a pub .", "A , a pub ."]],
    }
    assert task.splits["train"][0] == {"context": "name : A | Type : pub", "completion": "A is a pub ."}


def test_webnlg_keeps_good_lexicalisations_and_marks_unseen_categories():
    task = _load("webnlg")
    assert task.protocol == "webnlg" and task.max_prompt_length == 192
    assert len(task.splits["train"]) == 48  # 24 entries x 2 "good" (the "bad" one is dropped)
    test = task.splits["test"]
    assert set(test["seen"]) == {True, False}
    assert all(" : " in c and "_" in c for c in test["context"])  # modified triples, underscores kept
    assert "garbage" not in task.splits["train"]["completion"]


def test_dart_lowercases_relations_and_uses_every_annotation():
    task = _load("dart")
    first = task.splits["test"][0]
    assert " : birthplace : " in first["context"] or " : occupation : " in first["context"]
    assert first["references"][0].endswith(".") and "seen" not in task.splits["test"].column_names


def test_missing_files_and_unreachable_hub_are_explained(tmp_path):
    with pytest.raises(UserError, match="webnlg train file not found"):
        _load("webnlg", f"task.data_dir={tmp_path}")
    cfg = compose_config("task=dart")
    with pytest.raises(OfflineError, match=r"task\.data_dir"):
        tasks.load(cfg.task, cfg.data)
    with pytest.raises(UserError, match="primary_metric"):
        _load("e2e", "task.primary_metric=test/accuracy")


def test_encoding_masks_the_context_and_ends_with_eos(gpt2_tokenizer):
    task = _load("e2e", "data.max_train_samples=2")
    encoded = encode_pairs(task.splits["train"], gpt2_tokenizer, seq_len=512)
    row, pair = encoded[0], task.splits["train"][0]
    context = gpt2_tokenizer.encode(pair["context"])
    target = gpt2_tokenizer.encode(" " + pair["completion"])
    assert row["input_ids"] == [*context, 50256, *target, 50256]
    assert row["labels"] == [IGNORE] * (len(context) + 1) + [*target, 50256]
    short = encode_pairs(task.splits["train"], gpt2_tokenizer, seq_len=10)[0]
    assert len(short["input_ids"]) == len(short["labels"]) == 10


def test_collators_pad_right_for_training_and_left_for_generation(gpt2_tokenizer):
    batch = LMCollator(gpt2_tokenizer)(
        [{"input_ids": [1, 2, 3], "labels": [-100, 2, 3]}, {"input_ids": [4], "labels": [4]}]
    )
    assert batch["input_ids"].tolist() == [[1, 2, 3], [4, 50256, 50256]]
    assert batch["labels"].tolist() == [[-100, 2, 3], [4, -100, -100]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    prompts = prompt_ids(gpt2_tokenizer, ["name : A", "a b c d e f g h"], max_prompt_length=4)
    assert prompts[0] == [*gpt2_tokenizer.encode("name : A"), 50256][-4:] and prompts[1][-1] == 50256
    left = left_pad([[7, 8], [9]], pad_id=0)
    assert torch.equal(left["input_ids"], torch.tensor([[7, 8], [0, 9]]))
    assert torch.equal(left["attention_mask"], torch.tensor([[1, 1], [0, 1]]))
