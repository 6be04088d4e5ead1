"""Prompt templates (LM-BFF's grammar, used unchanged by LiST) and their tokenization for prompt-based tasks.

A template is a string of parts separated by ``*`` (fewshot reference §2.4):
- ``cls``, ``mask``, ``sep``, ``sep+``: the tokenizer's special tokens; ``sep+`` also starts the next segment
  (token type ids, which matter for BERT only);
- ``sent_i``: text field i; the prefix ``+`` adds a leading space, the suffix ``l`` / ``u`` lower- / upper-cases its
  first character, ``-`` drops its last character (``sent-_0`` is the sentence without its final period,
  ``+sentl_1`` is " " + the second sentence with a lower-cased first letter);
- anything else is literal text with ``_`` for a space; a 1-character part (``?``, ``,``, ``.``) is one token.

Each part is tokenized on its own (no special tokens) and the ids are concatenated, as LM-BFF does. A masked LM
reads the class at the ``mask`` slot; a causal LM reads it as the next token after the parts before ``mask``, so
for a causal LM the parts after ``mask`` are dropped (a sentence there is an error: the model could not see it).
Too long inputs (``task.prompt.truncation``): ``list``, the default, cuts the rendered ids as LiST does (LiST
src/dataset.py L265-315, with a block of ``max_length - 2`` tokens): an input longer than the block keeps its first
block tokens + ``sep`` when the mask lies inside them, else a block-wide window centred on the mask with its first and
last tokens overwritten by the input's first and last (then ``sep``) when more than half a block follows the mask,
else its last block tokens (no ``cls``); inputs are at most ``max_length - 1`` long. A causal LM reads the class at
its last token, so ``list`` keeps its last ``max_length`` tokens. ``longest`` (the runner's earlier rule) drops
tokens from the end of the longest sentence until the whole fits, so the mask is never cut. Soft-prompt slots
count against the length either way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from datasets import DatasetDict

from adamix_runner.errors import UserError

SPECIAL_PARTS = ("cls", "mask", "sep", "sep+")
SENTENCE = re.compile(r"^(\+)?sent([lu])?(-)?_(\d+)$")
NO_SPACE_WORD = ("<", "[", ".", ",")  # LM-BFF: label words starting with these are looked up without a space
TRUNCATIONS = ("list", "longest")


@dataclass(frozen=True)
class Part:
    kind: str  # "special", "sentence" or "text"
    value: str  # special token name, or literal text
    field: int = -1
    space: bool = False
    case: str = ""
    drop_last: bool = False


def parse_template(template: str) -> list[Part]:
    """The template's parts; exactly one ``mask``. Raises UserError naming the template otherwise."""
    parts = []
    for raw in template.split("*"):
        if not raw:
            continue
        if raw in SPECIAL_PARTS:
            parts.append(Part("special", raw))
        elif match := SENTENCE.match(raw):
            plus, case, minus, index = match.groups()
            parts.append(Part("sentence", raw, int(index), bool(plus), case or "", bool(minus)))
        elif raw.startswith(("sent", "+sent")):
            raise UserError(f"template part *{raw}* is not a sentence part (sent_i, +sent_i, sent-_i, +sentl_i, ...)")
        else:
            parts.append(Part("text", raw.replace("_", " ")))
    masks = sum(p.kind == "special" and p.value == "mask" for p in parts)
    if masks != 1:
        raise UserError(f"task.prompt.template={template!r} must have exactly one *mask* part, it has {masks}")
    return parts


def check_fields(parts: list[Part], num_fields: int, template: str) -> None:
    used = sorted({p.field for p in parts if p.kind == "sentence"})
    if not used or used[-1] >= num_fields:
        raise UserError(
            f"task.prompt.template={template!r} uses sentence(s) {used}, but the task has {num_fields} text "
            f"field(s) (sent_0 .. sent_{num_fields - 1}); it needs at least one"
        )


def sentence_text(part: Part, text: str) -> str:
    if part.drop_last:
        text = text[:-1]
    if part.case == "l":
        text = text[:1].lower() + text[1:]
    elif part.case == "u":
        text = text[:1].upper() + text[1:]
    return " " + text if part.space else text


def label_word_ids(tokenizer, words: list[str]) -> list[int]:
    """One vocabulary id per label word: ``" " + word`` must be a single token (LM-BFF and LiST assert this)."""
    ids = []
    for word in words:
        pieces = tokenizer.tokenize(word if word.startswith(NO_SPACE_WORD) else " " + word)
        if len(pieces) != 1:
            raise UserError(
                f"label word {word!r} is {len(pieces)} tokens {pieces} for this tokenizer; each label word must be "
                f"one token: choose other words (task.prompt.label_words=[...])"
            )
        ids.append(tokenizer.convert_tokens_to_ids(pieces[0]))
    if len(set(ids)) != len(ids):
        raise UserError(f"label words {words} map to repeated token ids {ids}; give distinct words")
    return ids


@dataclass(frozen=True)
class Rendering:
    """How to turn a template into ids for one model: masked or causal, soft-prompt slots, length limit."""

    causal: bool
    max_length: int
    soft_tokens: int = 0  # prompt tuning: filler slots whose embeddings the soft prompt replaces
    soft_offset: int = 0  # where those slots start
    truncation: str = "list"  # TRUNCATIONS: LiST's cut of the rendered ids, or the longest sentence's tail


class PromptEncoder:
    """Renders rows through a template into input ids, token type ids and the position the class is read at."""

    def __init__(self, template: str, tokenizer, rendering: Rendering) -> None:
        self.parts = parse_template(template)
        self.template = template
        self.tokenizer = tokenizer
        self.rendering = rendering
        if rendering.causal:
            self._check_causal()
        elif tokenizer.mask_token_id is None:
            raise UserError("this tokenizer has no mask token; a masked-LM template needs one (or use a causal LM)")

    def _check_causal(self) -> None:
        after = self.parts[[p.value for p in self.parts].index("mask") + 1 :]
        if any(p.kind == "sentence" for p in after):
            raise UserError(
                f"task.prompt.template={self.template!r} has a sentence after *mask*; a causal LM predicts the label "
                "word as the next token and cannot see text after it: give a template with *mask* after every "
                "sentence"
            )

    def _tokens(self, part: Part, texts: list[str]) -> list[int]:
        tok = self.tokenizer
        if part.kind == "special":
            if self.rendering.causal:
                return []
            return [{"cls": tok.cls_token_id, "mask": tok.mask_token_id}.get(part.value, tok.sep_token_id)]
        if part.kind == "sentence":
            return tok.encode(sentence_text(part, texts[part.field]), add_special_tokens=False)
        if len(part.value) == 1:
            return [tok.convert_tokens_to_ids(part.value)]
        return tok.encode(part.value, add_special_tokens=False)

    def encode(self, texts: list[str]) -> dict[str, list[int] | int]:
        parts = self.parts
        if self.rendering.causal:
            parts = parts[: [p.value for p in parts].index("mask")]
        pieces = [self._tokens(p, texts) for p in parts]
        if self.rendering.truncation == "longest":
            self._truncate(parts, pieces)
        ids, types, segment, mask_pos = [], [], 0, -1
        for part, piece in zip(parts, pieces, strict=True):
            if part.value == "mask" and part.kind == "special":
                mask_pos = len(ids)
            ids += piece
            types += [segment] * len(piece)
            if part.kind == "special" and part.value == "sep+":
                segment += 1
        if self.rendering.causal:
            if not ids:
                raise UserError(f"task.prompt.template={self.template!r} has nothing before *mask*")
            mask_pos = len(ids) - 1  # the last prefix token predicts the label word
        if self.rendering.truncation == "list":
            ids, types, mask_pos = self._list_cut(ids, types, mask_pos)
        soft = self.rendering.soft_tokens
        if soft:
            at = self.rendering.soft_offset
            filler = self.tokenizer.unk_token_id if self.tokenizer.unk_token_id is not None else ids[0]
            ids[at:at] = [filler] * soft
            types[at:at] = [types[at] if at < len(types) else 0] * soft
            mask_pos += soft if mask_pos >= at else 0
        return {"input_ids": ids, "token_type_ids": types, "attention_mask": [1] * len(ids), "mask_pos": mask_pos}

    def _list_cut(self, ids: list[int], types: list[int], mask_pos: int) -> tuple[list[int], list[int], int]:
        """LiST's truncation of the rendered ids (module docstring); the mask position is found again after it."""
        budget = self.rendering.max_length - self.rendering.soft_tokens
        if self.rendering.causal:
            return ids[-budget:], types[-budget:], min(mask_pos, budget - 1)
        block = budget - 2
        if len(ids) <= block:
            return ids, types, mask_pos
        sep = self.tokenizer.sep_token_id
        if mask_pos < block:
            ids, types = [*ids[:block], sep], types[:block] + types[block - 1 : block]
        elif len(ids) - mask_pos > block // 2:
            start, end = mask_pos - block // 2, mask_pos + block // 2
            ids = list(ids)
            ids[start], ids[end - 1] = ids[0], ids[-1]
            ids, types = [*ids[start:end], sep], types[start:end] + types[end - 1 : end]
        else:
            ids, types = ids[-block:], types[-block:]
        return ids, types, ids.index(self.tokenizer.mask_token_id)

    def _truncate(self, parts: list[Part], pieces: list[list[int]]) -> None:
        """Drop tokens from the end of the longest sentence until the whole fits (soft slots included)."""
        budget = self.rendering.max_length - self.rendering.soft_tokens
        excess = sum(map(len, pieces)) - budget
        sentences = [i for i, p in enumerate(parts) if p.kind == "sentence"]
        while excess > 0:
            longest = max(sentences, key=lambda i: len(pieces[i]), default=None)
            if longest is None or not pieces[longest]:
                limit = self.rendering.max_length
                raise UserError(f"data.max_seq_length={limit} cannot hold the template's own tokens")
            pieces[longest].pop()
            excess -= 1


def encode_prompts(splits: DatasetDict, text_fields: tuple[str, ...], encoder: PromptEncoder) -> DatasetDict:
    """input_ids, token_type_ids, attention_mask, mask_pos and labels for every split; no raw text."""
    check_fields(encoder.parts, len(text_fields), encoder.template)

    def render(batch: dict) -> dict:
        rows = [encoder.encode(list(texts)) for texts in zip(*(batch[f] for f in text_fields), strict=True)]
        return {key: [row[key] for row in rows] for key in rows[0]} if rows else {}

    labelled = splits.rename_column("label", "labels")
    return labelled.map(render, batched=True, remove_columns=list(text_fields), desc="Rendering prompts")


class PromptCollator:
    """Right padding (pad id, attention 0, token type 0); mask positions and labels stacked as they are."""

    def __init__(self, pad_id: int, token_types: bool) -> None:
        self.pad_id = pad_id
        self.token_types = token_types

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        width = max(len(row["input_ids"]) for row in rows)
        keys = ("input_ids", "attention_mask", *(("token_type_ids",) if self.token_types else ()))
        batch = {key: torch.zeros((len(rows), width), dtype=torch.long) for key in keys}
        batch["input_ids"].fill_(self.pad_id)
        for i, row in enumerate(rows):
            for key in keys:
                batch[key][i, : len(row[key])] = torch.as_tensor(row[key])
        batch["mask_pos"] = torch.tensor([row["mask_pos"] for row in rows], dtype=torch.long)
        batch["labels"] = torch.tensor([row["labels"] for row in rows], dtype=torch.long)
        return batch
