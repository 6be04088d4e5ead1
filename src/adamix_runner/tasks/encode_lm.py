"""Causal-LM encoding for NLG, as the official GPT-2 pipeline (NLG/src/gpt2_encode.py, data_utils.FT_Dataset).

Training row: `tokens(context) + [sep] + tokens(" " + completion) + [eos]`, cut to `seq_len` from the right;
labels are -100 on the context and the separator, so only the completion and its EOS are learnt. GPT-2's
separator and EOS are both `<|endoftext|>` (50256, `--add_bos --add_eos`); other LMs use their own EOS for
both. Generation prompt: `tokens(context) + [sep]`, keeping its last `max_prompt_length` tokens (the official
query keeps the last `seq_len - eval_len`), left-padded so that every row's next token sits at the same place.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from datasets import Dataset
from datasets.fingerprint import Hasher
from transformers import PreTrainedTokenizerBase

IGNORE = -100


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


def encode_pairs(data: Dataset, tokenizer: PreTrainedTokenizerBase, seq_len: int) -> Dataset:
    """(context, completion) rows -> input_ids and labels (no padding: the collator pads per batch)."""
    ids = special_ids(tokenizer)

    def tokenize(batch: dict) -> dict:
        contexts = _tokens(tokenizer, batch["context"])
        targets = _tokens(tokenizer, [" " + text for text in batch["completion"]])
        input_ids, labels = [], []
        for context, target in zip(contexts, targets, strict=True):
            condition, completion = [*context, ids.separator], [*target, ids.eos]
            input_ids.append((condition + completion)[:seq_len])
            labels.append(([IGNORE] * len(condition) + completion)[:seq_len])
        return {"input_ids": input_ids, "labels": labels}

    # named by the tokenizer's source instead of a hash of the tokenizer itself (seconds for a 50k-token BPE)
    key = (
        data._fingerprint,
        "encode_pairs-1",
        type(tokenizer).__name__,
        tokenizer.name_or_path,
        len(tokenizer),
        seq_len,
    )
    return data.map(
        tokenize,
        batched=True,
        remove_columns=data.column_names,
        new_fingerprint=Hasher.hash(key),
        desc="Tokenizing (LM)",
    )


def prompt_ids(tokenizer: PreTrainedTokenizerBase, contexts: Sequence[str], max_prompt_length: int) -> list[list[int]]:
    """Generation prompts: context + separator, keeping the last `max_prompt_length` tokens."""
    separator = special_ids(tokenizer).separator
    return [[*ids, separator][-max_prompt_length:] for ids in _tokens(tokenizer, contexts)]


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
