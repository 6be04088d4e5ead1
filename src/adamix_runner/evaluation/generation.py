"""Batched beam search through `model.generate`, with the official NLG decoding settings (reference §6.2).

The official `gpt2_beam.py` runs `--beam 10 --length_penalty 0.8 --no_repeat_ngram_size 4
--repetition_penalty 1.0 --eval_len 64` and stops a hypothesis at `<|endoftext|>` (50256) or `\\n\\n` (628,
`--eos_token_id 628` appends to the default [50256]); `gpt2_decode.py` then cuts the text at the first
`<|endoftext|>` and `\\n\\n` and strips it. Two details differ from transformers' defaults and are matched here:
the n-gram ban looks at the generated tokens only (transformers' processor also bans n-grams of a decoder-only
model's prompt, which would forbid copying long entity names from the input), and `\\n\\n` stops decoding.
Remaining differences, inherent to transformers' beam search: finished hypotheses leave the beam and are
replaced by live ones (the official loop lets them drop out, decoding with fewer live beams), and decoding
stops early once no live beam can beat the finished ones (`early_stopping=False`, the heuristic).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import LogitsProcessorList, NoRepeatNGramLogitsProcessor, PreTrainedTokenizerBase

from adamix_runner.config import GenerationConfig
from adamix_runner.tasks.encode_lm import left_pad, special_ids

PARAGRAPH = "\n\n"


class GeneratedNoRepeatNGram(NoRepeatNGramLogitsProcessor):
    """No n-gram twice among the generated tokens (the prompt's n-grams stay allowed), as fairseq's and the
    official script's ban; `prompt_length` is the width of the left-padded prompt batch."""

    def __init__(self, ngram_size: int, prompt_length: int):
        super().__init__(ngram_size)
        self.prompt_length = prompt_length

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        return super().__call__(input_ids[:, self.prompt_length :], scores)


def stop_ids(tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """EOS, plus the paragraph break when it is one token (GPT-2: [50256, 628])."""
    eos = special_ids(tokenizer).eos
    paragraph = tokenizer.encode(PARAGRAPH, add_special_tokens=False)
    return [eos, paragraph[0]] if len(paragraph) == 1 and paragraph[0] != eos else [eos]


def decode_completion(tokenizer: PreTrainedTokenizerBase, tokens: Sequence[int], stops: Sequence[int]) -> str:
    """The text up to the first stop token and the first paragraph break, stripped (as gpt2_decode.py)."""
    tokens = list(tokens)
    ends = [tokens.index(stop) for stop in stops if stop in tokens]
    text = tokenizer.decode(tokens[: min(ends, default=len(tokens))], skip_special_tokens=False)
    return text.split(PARAGRAPH)[0].strip()


@torch.no_grad()
def generate(
    model,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[Sequence[int]],
    settings: GenerationConfig,
) -> list[str]:
    """One decoded completion per prompt (token ids from `encode_lm.prompt_ids`), in the prompts' order.

    Prompts are decoded in batches of similar length (left-padded), longest first, so padding stays small.
    """
    model.eval()
    device = next(model.parameters()).device
    stops, pad = stop_ids(tokenizer), special_ids(tokenizer).pad
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    texts: dict[int, str] = {}
    for start in range(0, len(order), settings.batch_size):
        chosen = order[start : start + settings.batch_size]
        batch = {k: v.to(device) for k, v in left_pad([prompts[i] for i in chosen], pad).items()}
        width = batch["input_ids"].shape[1]
        processors = LogitsProcessorList()
        if settings.no_repeat_ngram_size > 0:
            processors.append(GeneratedNoRepeatNGram(settings.no_repeat_ngram_size, width))
        output = model.generate(
            **batch,
            do_sample=False,
            num_beams=settings.num_beams,
            length_penalty=settings.length_penalty,
            repetition_penalty=settings.repetition_penalty,
            max_new_tokens=settings.max_new_tokens,
            eos_token_id=stops,
            pad_token_id=pad,
            logits_processor=processors,
        )
        for row, index in enumerate(chosen):
            texts[index] = decode_completion(tokenizer, output[row, width:].tolist(), stops)
    return [texts[i] for i in range(len(prompts))]
