"""Few-shot prompts as LiST computes them (fidelity audit, part A): each task's template and label words against
LiST's own tables, and every real row of ../shared/data/fewshot-list rendered by the runner against this file's
own oracle (each template written out by hand, LiST's truncation re-stated), with pinned ids and branch counts."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from transformers import AutoTokenizer

from adamix_runner.models.prompt import load_prompt_model
from adamix_runner.models.tokenizer_assets import gpt2_tokenizer_path
from adamix_runner.pipelines import prompt as prompt_pipeline
from adamix_runner.tasks import load
from adamix_runner.tasks.encode_prompt import PromptEncoder, Rendering, label_word_ids
from adamix_runner.tasks.fewshot import options

from .test_prompt import LIST_DIR, needs_list

# LiST src/run.py (template_dict, mapping_dict), in each task's class order (the runner's label_names / list_labels)
LIST_TEMPLATES = {
    "sst2": "*cls**sent_0*_It_was*mask*.*sep+*",
    "mpqa": "*cls**sent_0*_It_was*mask*.*sep+*",
    "subj": "*cls**sent_0*_This_is*mask*.*sep+*",
    "qqp": "*cls**sent_0**mask*,*+sentl_1**sep+*",
    "mnli": "*cls**sent-_0*?*mask*,*+sentl_1**sep+*",
    "rte": "*cls**sent-_0*?*mask*,*+sentl_1**sep+*",
}
LIST_MAPPING = {
    "sst2": {"0": "terrible", "1": "great"},
    "mpqa": {"0": "terrible", "1": "great"},
    "subj": {"0": "subjective", "1": "objective"},
    "qqp": {"0": "No", "1": "Yes"},
    "mnli": {"contradiction": "No", "entailment": "Yes", "neutral": "Maybe"},
    "rte": {"not_entailment": "No", "entailment": "Yes"},
}
MAX_LENGTH = 128  # LiST run.sh's max_seq_length, Table 6's data.max_seq_length


@pytest.fixture(scope="module")
def roberta_bpe():
    """GPT-2's BPE with RoBERTa's special tokens: RoBERTa's token strings (ids = GPT-2's, specials appended)."""
    tokenizer = AutoTokenizer.from_pretrained(str(gpt2_tokenizer_path()))
    tokenizer.add_special_tokens({"cls_token": "<s>", "sep_token": "</s>", "mask_token": "<mask>"})
    return tokenizer


@pytest.mark.parametrize("name", sorted(LIST_TEMPLATES))
def test_each_fewshot_task_composes_lists_template_and_label_words(compose_run, name):
    prompt = compose_run(f"task=fewshot_{name}").task.prompt
    assert prompt.template == LIST_TEMPLATES[name]
    classes = list(prompt.list_labels) if prompt.list_labels else list(prompt.label_names)
    assert list(prompt.label_words) == [LIST_MAPPING[name][c] for c in classes]
    assert all(isinstance(word, str) for word in prompt.label_words)
    assert (prompt.truncation, prompt.label_rows) == ("list", "untied")


def test_mnli_and_rte_read_yes_and_no(compose_run, roberta_bpe):
    """Before the fix the unquoted words became "True"/"False" (audit D-A1)."""
    words = {n: list(compose_run(f"task=fewshot_{n}").task.prompt.label_words) for n in ("mnli", "rte")}
    assert words == {"mnli": ["Yes", "Maybe", "No"], "rte": ["Yes", "No"]}
    assert label_word_ids(roberta_bpe, words["mnli"]) == [3363, 6674, 1400]  # ĠYes ĠMaybe ĠNo (GPT-2 ids)


def _by_hand(name: str, texts: list[str], tok) -> list[int]:
    """The LM-BFF template of `name` written out: each part encoded alone, 1-character literals as bare tokens."""

    def enc(text: str) -> list[int]:
        return tok.encode(text, add_special_tokens=False)

    def low(text: str) -> str:
        return text[:1].lower() + text[1:]

    bare = tok.convert_tokens_to_ids
    cls, sep, mask = tok.cls_token_id, tok.sep_token_id, tok.mask_token_id
    if name in ("sst2", "mpqa", "subj"):
        verb = " This is" if name == "subj" else " It was"
        return [cls, *enc(texts[0]), *enc(verb), mask, bare("."), sep]
    if name == "qqp":
        return [cls, *enc(texts[0]), mask, bare(","), *enc(" " + low(texts[1])), sep]
    return [cls, *enc(texts[0][:-1]), bare("?"), mask, bare(","), *enc(" " + low(texts[1])), sep]


def _list_cut(ids: list[int], mask: int, sep: int) -> tuple[list[int], str]:
    """LiST src/dataset.py L265-315 restated: block = max_length - 2; the branch taken, for the counts."""
    block = MAX_LENGTH - 2
    if len(ids) <= block:
        return ids, "kept"
    at = ids.index(mask)
    if at < block:
        return [*ids[:block], sep], "head"
    if len(ids) - at > block // 2:
        window = ids[at - block // 2 : at + block // 2]
        return [ids[0], *window[1:-1], ids[-1], sep], "window"
    return ids[-block:], "tail"


def _rows(compose_run, name: str):
    """(split, row index, texts) of every train row of splits 1-5 and every evaluation row."""
    for seed in range(5):
        cfg = compose_run(f"task=fewshot_{name}", f"fewshot.data_dir={LIST_DIR}", f"seed={seed}")
        task = load(cfg.task, cfg.data, options(cfg.fewshot, cfg.seed))
        splits = ["train", *(task.eval_splits if seed == 0 else [])]
        for split in splits:
            for i, row in enumerate(task.splits[split]):
                yield f"{split}{seed + 1 if split == 'train' else ''}", i, [row[f] for f in task.text_fields], cfg


# Per task: rows, and rows by LiST's truncation branch (kept / head cut / window / last 126), every split.
BRANCHES = {
    "mnli": {"kept": 360},
    "qqp": {"kept": 360},
    "rte": {"kept": 371, "head": 18, "tail": 38},
    "sst2": {"kept": 1022},
    "subj": {"kept": 2149, "tail": 1},
    "mpqa": {"kept": 2150},
}
# (length, mask position, first 4 ids, last 4 ids) of chosen real rows, from the oracle (GPT-2 ids; <s> 50257,
# </s> 50258, <mask> 50259). RTE train split 1 rows 15 and 20 are the audit's examples: LiST's mask at 119, and
# LiST's ids starting [16, 731, 1609, 14019] in RoBERTa's numbering (GPT-2 id + 4), no <s>.
PINNED = {
    ("rte", "train1", 15): (127, 119, [50257, 25631, 14015, 12], [347, 8228, 3245, 50258]),
    ("rte", "train1", 20): (126, 113, [12, 727, 1605, 14015], [812, 1468, 13, 50258]),
    ("rte", "validation", 0): (43, 32, [50257, 35, 2271, 29030], [281, 5778, 13, 50258]),
    ("subj", "test", 1357): (126, 123, [29622, 357, 384, 272], [318, 50259, 13, 50258]),
    ("sst2", "train1", 0): (21, 18, [50257, 41070, 262, 3435], [373, 50259, 13, 50258]),
    ("mnli", "train1", 0): (89, 72, [50257, 392, 379, 262], [673, 750, 13, 50258]),
    ("qqp", "train1", 0): (29, 7, [50257, 8491, 7970, 50220], [319, 3668, 30, 50258]),
    ("mpqa", "test", 0): (8, 5, [50257, 23855, 1397, 632], [373, 50259, 13, 50258]),
}


@needs_list
@pytest.mark.parametrize("name", sorted(BRANCHES))
def test_every_real_row_renders_as_lists_oracle(compose_run, roberta_bpe, name):
    tok = roberta_bpe
    encoder = None
    branches, pinned = Counter(), {}
    for split, i, texts, cfg in _rows(compose_run, name):
        if encoder is None:
            encoder = PromptEncoder(cfg.task.prompt.template, tok, Rendering(False, MAX_LENGTH))
        expected, branch = _list_cut(_by_hand(name, texts, tok), tok.mask_token_id, tok.sep_token_id)
        ours = encoder.encode(texts)
        assert ours["input_ids"] == expected, (split, i, branch)
        assert ours["input_ids"][ours["mask_pos"]] == tok.mask_token_id
        assert len(ours["input_ids"]) <= MAX_LENGTH - 1
        branches[branch] += 1
        if (name, split, i) in PINNED:
            ids = ours["input_ids"]
            pinned[(name, split, i)] = (len(ids), ours["mask_pos"], ids[:4], ids[-4:])
    assert dict(branches) == BRANCHES[name]
    assert pinned == {key: value for key, value in PINNED.items() if key[0] == name}


def test_the_earlier_truncation_is_kept_under_its_name(roberta_bpe):
    """truncation=longest cuts the longest sentence's tail, keeping <s>, the mask and the template's end; list
    (LiST) keeps the first 126 tokens + </s> here, losing the mask and the hypothesis (LiST's head branch)."""
    template = LIST_TEMPLATES["rte"]
    texts = ["word " * 150 + "end.", "Short hypothesis."]
    longest = PromptEncoder(template, roberta_bpe, Rendering(False, MAX_LENGTH, truncation="longest")).encode(texts)
    cut = PromptEncoder(template, roberta_bpe, Rendering(False, MAX_LENGTH)).encode(texts)
    assert len(longest["input_ids"]) == MAX_LENGTH and longest["input_ids"][0] == roberta_bpe.cls_token_id
    assert roberta_bpe.decode(longest["input_ids"][-8:]) == " word?<mask>, short hypothesis.</s>"
    hand = _by_hand("rte", texts, roberta_bpe)
    assert hand.index(roberta_bpe.mask_token_id) >= MAX_LENGTH - 2  # so LiST keeps the last 126 tokens
    assert cut["input_ids"] == hand[-(MAX_LENGTH - 2) :] and cut["input_ids"][0] != roberta_bpe.cls_token_id


def test_a_causal_lm_keeps_the_tokens_nearest_its_label_word(roberta_bpe):
    bpe = AutoTokenizer.from_pretrained(str(gpt2_tokenizer_path()))
    encoded = PromptEncoder(LIST_TEMPLATES["sst2"], bpe, Rendering(True, 16)).encode(["one two " * 20 + "fine"])
    assert len(encoded["input_ids"]) == 16 and encoded["mask_pos"] == 15
    assert bpe.decode(encoded["input_ids"]).endswith("two fine It was")


@pytest.mark.parametrize("model", ["tiny-roberta", "tiny-gpt2"])
def test_the_label_words_own_rows_start_as_the_tied_ones_and_train_alone(compose_run, model):
    """LiST's untied decoder (audit D-A3): the label words' rows are a copy, trained with the head; the
    vocabulary projection stays frozen and untouched; tied keeps the earlier frozen behaviour."""
    from adamix_runner.adaptation import apply, count_parameters, trainable_parameters
    from adamix_runner.config.checks import adaptation_spec

    cfg = compose_run("task=fewshot_sst2", f"model={model}", "peft=head")
    torch.manual_seed(0)
    untied = prompt_pipeline.load_model(cfg, 2)
    apply(untied, adaptation_spec(cfg), 0)
    tied_cfg = compose_run("task=fewshot_sst2", f"model={model}", "peft=head", "task.prompt.label_rows=tied")
    torch.manual_seed(0)
    tied = prompt_pipeline.load_model(tied_cfg, 2)
    apply(tied, adaptation_spec(tied_cfg), 0)
    hidden = untied.config.hidden_size if model == "tiny-roberta" else untied.config.n_embd
    assert count_parameters(untied).head - count_parameters(tied).head == 2 * hidden
    names = [n for n, _ in trainable_parameters(untied)]
    assert "label_rows.weight" in names
    ids = torch.randint(5, 3000, (2, 7), generator=torch.Generator().manual_seed(1))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "mask_pos": torch.tensor([3, 6])}
    torch.testing.assert_close(untied.eval()(**batch).logits, tied.eval()(**batch).logits, rtol=0, atol=1e-6)
    untied(**batch).logits[:, 1].sum().backward()
    assert untied.label_rows.weight.grad[1].abs().sum() > 0 and not untied.label_rows.weight.grad[0].any()
    assert untied.get_output_embeddings().weight.grad is None


def test_full_fine_tuning_trains_the_tied_matrix_itself(compose_run):
    cfg = compose_run("task=fewshot_sst2", "model=tiny-roberta", "peft=full")
    assert prompt_pipeline.load_model(cfg, 2).label_rows is None


def test_config_overrides_reach_a_pretrained_masked_lm(compose_run, tmp_path):
    """The masked-LM prompt loader once dropped model.config_overrides (aesthetics audit §3)."""
    cfg = compose_run("task=fewshot_sst2", "model=tiny-roberta")
    torch.manual_seed(0)
    load_prompt_model(cfg.model).lm.save_pretrained(tmp_path)
    saved = compose_run(
        "task=fewshot_sst2", "model=tiny-roberta", "model.pretrained=true", f"model.path={tmp_path}",
        "+model.config_overrides.hidden_dropout_prob=0.25",
    )  # fmt: skip
    loaded = load_prompt_model(saved.model)
    assert loaded.config.hidden_dropout_prob == 0.25
    assert loaded.roberta.encoder.layer[0].output.dropout.p == 0.25


@needs_list
def test_eval_shuffle_makes_the_first_rows_a_random_subset(compose_run):
    """LiST's Subj test file is sorted by class: the first 50 rows are one class unless shuffled."""

    def first(*extra):
        cfg = compose_run("task=fewshot_subj", f"fewshot.data_dir={LIST_DIR}", "data.max_eval_samples=50", *extra)
        return load(cfg.task, cfg.data, options(cfg.fewshot, cfg.seed)).splits["test"]

    assert set(first()["label"]) == {0}
    shuffled = first("fewshot.eval_shuffle=0")
    assert len(shuffled) == 50 and set(shuffled["label"]) == {0, 1}
    assert shuffled["text"] == first("fewshot.eval_shuffle=0")["text"]  # seeded: the same rows every run


def test_lists_houlsby_is_its_adapter_with_a_relu(compose_run):
    """peft.adapter_form=list_relu (Table 6's Houlsby row): LiST's adapter_choice=houlsby, no biases, after both
    sub-layers; the runner's GELU adapter with biases stays peft.adapter_form=expert_soup."""
    from adamix_runner.adaptation import apply
    from adamix_runner.adaptation.adapter import AdaptedModule
    from adamix_runner.config.checks import adaptation_spec

    cfg = compose_run("task=fewshot_sst2", "model=tiny-roberta", "peft=houlsby", "peft.adapter_form=list_relu")
    model = prompt_pipeline.load_model(cfg, 2)
    apply(model, adaptation_spec(cfg), 0)
    adapted = {n: m for n, m in model.named_modules() if isinstance(m, AdaptedModule)}
    assert len(adapted) == 2 * model.config.num_hidden_layers
    layer = next(iter(adapted.values()))
    assert layer.adapter.activation == "relu" and layer.adapter.down.bias is None and layer.adapter.up.bias is None
    h = torch.randn(2, 3, model.config.hidden_size)
    down, up = layer.adapter.down.weight[0], layer.adapter.up.weight[0]
    torch.testing.assert_close(layer.adapter(h), h + torch.relu(h @ down.T) @ up.T)


def test_lists_weight_decay_rule_decays_the_lm_heads_layer_norm(compose_run):
    """train.no_decay_rule=names: LiST exempts names containing bias / LayerNorm.weight, so HF's lower-case
    lm_head.layer_norm.weight decays (audit D-A5); the default exempts every LayerNorm."""
    from adamix_runner.training.optim import build_optimizer

    cfg = compose_run("task=fewshot_sst2", "model=tiny-roberta")
    model = prompt_pipeline.load_model(cfg, 2)
    params = list(model.parameters())
    norm = model.lm_head.layer_norm.weight

    def decayed(rule: str) -> bool:
        groups = build_optimizer(model, params, 1e-3, 0.1, no_decay_rule=rule).param_groups
        return any(p is norm for g in groups if g["weight_decay"] > 0 for p in g["params"])

    assert decayed("names") and not decayed("modules")
    assert compose_run("task=fewshot_sst2").train.no_decay_rule == "modules"


def test_lists_seed_rule_trains_split_k_with_seed_k(compose_run):
    """fewshot.train_seed=split (Table 6): the table's seed 0 reads split 1 and trains it with seed 1, as LiST's
    run.sh does; the default trains it with seed 0. The adapter's initialisation shows which seed ran."""
    from adamix_runner.build import build_model
    from adamix_runner.tasks.fewshot import training_seed

    def init(*extra):
        cfg = compose_run("task=fewshot_sst2", "model=tiny-roberta", "peft=list_adapter", *extra)
        return training_seed(cfg), next(p for n, p in build_model(cfg, 2)[0].named_parameters() if "adapter" in n)

    (list_seed, list_init), (run_seed, run_init) = init("fewshot.train_seed=split"), init()
    assert (list_seed, run_seed) == (1, 0)
    assert torch.equal(list_init, init("seed=1")[1]) and not torch.equal(list_init, run_init)
