"""Tokenization, once per task and tokenizer, and padding per batch.

`datasets` caches the map under a fingerprint of its input and of the tokenizing function (tokenizer and
max length included), so a rerun reads the tokens back instead of recomputing them. Padding waits for the
collator: each batch is padded to its own longest row, not to max_seq_length.
"""

from __future__ import annotations

from datasets import DatasetDict
from transformers import DataCollatorWithPadding, PreTrainedTokenizerBase

from adamix_runner.tasks.base import TaskData

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def encode(task: TaskData, tokenizer: PreTrainedTokenizerBase, max_seq_length: int) -> DatasetDict:
    """input_ids, attention_mask, token_type_ids (when the tokenizer makes them) and labels; no raw text."""
    fields = task.text_fields

    def tokenize(batch: dict) -> dict:
        tokens = tokenizer(*(batch[field] for field in fields), truncation=True, max_length=max_seq_length)
        return {key: tokens[key] for key in MODEL_INPUTS if key in tokens}

    labelled = task.splits.rename_column("label", "labels")
    return labelled.map(tokenize, batched=True, remove_columns=list(fields), desc="Tokenizing")


def collator(tokenizer: PreTrainedTokenizerBase) -> DataCollatorWithPadding:
    return DataCollatorWithPadding(tokenizer)
