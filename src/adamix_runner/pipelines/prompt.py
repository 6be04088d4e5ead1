"""Prompt-based classification (few-shot, the paper's Table 6): template + label words read by an LM head.

The class logits are the LM head's logits at the mask slot (masked LM) or at the last token before the label word
(causal LM), restricted to the label words (models/prompt.py); the loss is cross-entropy over them, and AdaMix's
consistency term ties the class logits of its two routed views, exactly as in classification (weight 1.0).
Evaluation scores those class logits with the task's metrics; there is no validation set (the few-shot protocol
reports the last step).
"""

from __future__ import annotations

import functools
import json

import torch
from omegaconf import OmegaConf
from torch.utils.data import DataLoader

from adamix_runner.adaptation.soft_prompt import soft_prompt_offset
from adamix_runner.models.causal_lm import load_lm_tokenizer
from adamix_runner.models.encoder import load_tokenizer as load_masked_tokenizer
from adamix_runner.models.prompt import is_causal, load_prompt_model
from adamix_runner.pipelines import Prepared
from adamix_runner.pipelines.classification import class_logit_objective
from adamix_runner.tasks.encode_lm import special_ids
from adamix_runner.tasks.encode_prompt import PromptCollator, PromptEncoder, Rendering, encode_prompts, label_word_ids
from adamix_runner.tasks.fewshot import training_seed
from adamix_runner.training.batching import make_train_loader


def load_model(cfg, num_labels: int, *, on_meta: bool = False, model_cfg=None):
    """The prompt model with its label words set (and, LiST's way, their own output rows: models/prompt.py)."""
    model = load_prompt_model(model_cfg or cfg.model, on_meta=on_meta)
    untied = cfg.task.prompt.label_rows == "untied" and cfg.peft.method != "full"
    words = list(cfg.task.prompt.label_words)
    ids = list(range(len(words))) if on_meta else label_word_ids(load_tokenizer(cfg), words)  # meta: shapes only
    model.set_label_words(ids, untied=untied)
    return model


def load_tokenizer(cfg):
    """The model's tokenizer, loaded once per model config in this process (load_model needs it for the label
    words, the data for the rendering, and a GGUF tokenizer takes ~20 s to read on this CPU)."""
    return _tokenizer(json.dumps(OmegaConf.to_container(cfg.model, resolve=True), sort_keys=True))


@functools.lru_cache(maxsize=4)
def _tokenizer(model_json: str):
    model_cfg = OmegaConf.create(json.loads(model_json))
    return load_lm_tokenizer(model_cfg) if is_causal(model_cfg) else load_masked_tokenizer(model_cfg)


def rendering(cfg, model) -> Rendering:
    soft = cfg.peft.prefix_length if cfg.peft.method == "prompt_tuning" else 0
    offset = soft_prompt_offset(model.config.model_type)
    return Rendering(model.causal, cfg.data.max_seq_length, soft, offset, cfg.task.prompt.truncation)


def encoded_splits(cfg, task, tokenizer, model):
    """The task's splits rendered through its template (the model knows its label words since load_model)."""
    encoder = PromptEncoder(cfg.task.prompt.template, tokenizer, rendering(cfg, model))
    return encode_prompts(task.splits, task.text_fields, encoder)


def collator(tokenizer, model) -> PromptCollator:
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else special_ids(tokenizer).pad
    token_types = not model.causal and getattr(model.config, "type_vocab_size", 1) >= 2
    return PromptCollator(pad, token_types)


def prepare(cfg, task, tokenizer, model, accelerator, folder) -> Prepared:
    encoded = encoded_splits(cfg, task, tokenizer, model)
    pad = collator(tokenizer, model)
    train = cfg.train
    train_loader = make_train_loader(
        encoded["train"], train.batch_size, pad, train.group_by_length, train.num_workers, seed=training_seed(cfg)
    )
    own = {"collate_fn": pad, "generator": torch.Generator().manual_seed(training_seed(cfg))}
    evals = {s: DataLoader(encoded[s], train.eval_batch_size, **own) for s in task.eval_splits}
    return class_logit_objective(cfg, task, model, accelerator, train_loader, evals)
