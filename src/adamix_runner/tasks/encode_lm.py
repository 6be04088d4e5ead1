"""Causal-LM encoding for NLG, as the official GPT-2 pipeline (NLG/src/gpt2_encode.py, data_utils.FT_Dataset).

Training row: `prompt(context) + completion`, cut to `seq_len` from the right; labels are -100 on the prompt, so
only the completion and its EOS are learnt. Generation prompt: the same `prompt(context)`, keeping its last
`max_prompt_length` tokens (the official query keeps the last `seq_len - eval_len`), left-padded so that every
row's next token sits at the same place. Two prompt formats (`model.prompt_format`, `auto` picks by tokenizer):

- plain, the official one: `tokens(context) + [eos]`, completion `tokens(" " + text) + [eos]`. GPT-2's separator
  and EOS are both `<|endoftext|>` (50256, `--add_bos --add_eos`), its document boundary, after which any text
  may follow. For GPT-2 and every tokenizer without a chat template.
- chat: the tokenizer's chat template with the context as the user turn and the assistant header as the end of
  the prompt; completion `tokens(text) + [eos]` (the assistant turn's end). For instruct LMs (SmolLM2-Instruct):
  their EOS ends a chat turn and is always followed by the next turn's header in their training, so as a plain
  separator it makes the model write "\n" and stop (the first completion token has a log-probability near -23
  after `<|im_end|>`, about -3.4 after the assistant header), and every prediction decodes empty.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from datasets import Dataset
from datasets.fingerprint import Hasher
from transformers import PreTrainedTokenizerBase

from adamix_runner.errors import UserError

IGNORE = -100
PROMPT_FORMATS = ("auto", "plain", "chat")  # model.prompt_format: the two formats above, or auto


class SpecialIds(NamedTuple):
    """The ids with a role in NLG: EOS ends a text and, as in the official code, separates the context from the
    completion; it also pads for tokenizers without a pad token."""

    separator: int
    eos: int
    pad: int


def special_ids(tokenizer: PreTrainedTokenizerBase) -> SpecialIds:
    eos = tokenizer.eos_token_id
    if eos is None:
        raise ValueError(f"{type(tokenizer).__name__} has no eos_token; NLG needs one to end and separate texts")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    return SpecialIds(separator=eos, eos=eos, pad=pad)


def _tokens(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str]) -> list[list[int]]:
    return tokenizer(list(texts), add_special_tokens=False)["input_ids"]


def uses_chat(tokenizer: PreTrainedTokenizerBase, prompt_format: str = "auto") -> bool:
    """Whether prompts use the chat template: `auto` when the tokenizer has one, `chat` / `plain` as told."""
    if prompt_format not in PROMPT_FORMATS:
        raise UserError(f"model.prompt_format={prompt_format!r} is not one of {', '.join(PROMPT_FORMATS)}.")
    if prompt_format == "chat" and not tokenizer.chat_template:
        raise UserError(
            f"model.prompt_format=chat needs a tokenizer with a chat template; {tokenizer.name_or_path} has none "
            "(use model.prompt_format=plain or auto)."
        )
    return prompt_format == "chat" or (prompt_format == "auto" and bool(tokenizer.chat_template))


def _prompts(tokenizer: PreTrainedTokenizerBase, contexts: Sequence[str], chat: bool) -> list[list[int]]:
    if not chat:
        separator = special_ids(tokenizer).separator
        return [[*ids, separator] for ids in _tokens(tokenizer, contexts)]
    turns = [[{"role": "user", "content": context}] for context in contexts]
    texts = [tokenizer.apply_chat_template(turn, add_generation_prompt=True, tokenize=False) for turn in turns]
    return _tokens(tokenizer, texts)  # the template's special tokens are parsed as such


def _completions(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], chat: bool) -> list[list[int]]:
    eos = special_ids(tokenizer).eos
    return [[*ids, eos] for ids in _tokens(tokenizer, [text if chat else " " + text for text in texts])]


def encode_pairs(data: Dataset, tokenizer: PreTrainedTokenizerBase, seq_len: int, chat: bool = False) -> Dataset:
    """(context, completion) rows -> input_ids and labels (no padding: the collator pads per batch)."""

    def tokenize(batch: dict) -> dict:
        prompts = _prompts(tokenizer, batch["context"], chat)
        completions = _completions(tokenizer, batch["completion"], chat)
        input_ids, labels = [], []
        for condition, completion in zip(prompts, completions, strict=True):
            input_ids.append((condition + completion)[:seq_len])
            labels.append(([IGNORE] * len(condition) + completion)[:seq_len])
        return {"input_ids": input_ids, "labels": labels}

    # named by the tokenizer's source instead of a hash of the tokenizer itself (seconds for a 50k-token BPE)
    key = (
        data._fingerprint,
        "encode_pairs-2",
        type(tokenizer).__name__,
        tokenizer.name_or_path,
        len(tokenizer),
        seq_len,
        chat,
    )
    return data.map(
        tokenize,
        batched=True,
        remove_columns=data.column_names,
        new_fingerprint=Hasher.hash(key),
        desc="Tokenizing (LM)",
    )


def prompt_ids(
    tokenizer: PreTrainedTokenizerBase, contexts: Sequence[str], max_prompt_length: int, chat: bool = False
) -> list[list[int]]:
    """Generation prompts, as the training rows' prompts, keeping the last `max_prompt_length` tokens."""
    return [ids[-max_prompt_length:] for ids in _prompts(tokenizer, contexts, chat)]


class LMCollator:
    """Right padding for training: pad ids in input_ids, 0 in attention_mask, -100 in labels."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase):
        self.pad = special_ids(tokenizer).pad

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        width = max(len(row["input_ids"]) for row in rows)
        input_ids = torch.full((len(rows), width), self.pad, dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            n = len(row["input_ids"])
            input_ids[i, :n] = torch.as_tensor(row["input_ids"])
            labels[i, :n] = torch.as_tensor(row["labels"])
            mask[i, :n] = 1
        return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}


def left_pad(prompts: Sequence[Sequence[int]], pad_id: int) -> dict[str, torch.Tensor]:
    """Left padding for generation: every prompt ends at the last column."""
    width = max(len(p) for p in prompts)
    input_ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, prompt in enumerate(prompts):
        input_ids[i, width - len(prompt) :] = torch.as_tensor(prompt)
        mask[i, width - len(prompt) :] = 1
    return {"input_ids": input_ids, "attention_mask": mask}
