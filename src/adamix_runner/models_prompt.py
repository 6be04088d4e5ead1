"""The prompt head: a masked or causal LM read at one position, its vocabulary restricted to the label words.

:class:`PromptModel` adopts the LM's children under their own names (``roberta`` + ``lm_head``, ``bert`` +
``cls``, ``transformer`` / ``model`` + ``lm_head``), so the adaptation targets and the head table apply as they
do to any model of that type, and a fully fine-tuned prompt model saves as the plain LM it wraps. The forward
runs the encoder / decoder stack, takes the hidden state at ``mask_pos`` (the mask slot, or the last token before
the label word for a causal LM), applies the LM head to that one position and keeps the label words' logits:
the same numbers as the full LM logits gathered there, without the [B, T, V] tensor.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import torch
from torch import nn
from transformers import AutoConfig, AutoModelForMaskedLM, PreTrainedModel

from adamix_runner.errors import UserError
from adamix_runner.models import _from_hub_or_cache, _source, architecture_config, attention_kwargs
from adamix_runner.models_lm import load_causal_lm

MASKED_LM_TYPES = ("bert", "roberta", "xlm-roberta")


@dataclass
class PromptOutput:
    logits: torch.Tensor  # [B, number of label words]


class PromptModel(nn.Module):
    def __init__(self, lm: PreTrainedModel, causal: bool) -> None:
        super().__init__()
        base = lm.base_model_prefix
        heads = [name for name, _ in lm.named_children() if name != base]
        if len(heads) != 1:
            raise UserError(f"{type(lm).__name__} has children {heads} besides {base!r}; expected one LM head")
        for name, child in lm.named_children():
            self.add_module(name, child)
        object.__setattr__(self, "lm", lm)  # not a submodule: its children are ours already
        self.config = lm.config
        self.causal = causal
        self._base, self._head = base, heads[0]
        self.register_buffer("label_ids", torch.zeros(0, dtype=torch.long), persistent=False)

    def set_label_words(self, ids: list[int]) -> None:
        self.label_ids = torch.tensor(ids, dtype=torch.long, device=self.label_ids.device)

    def get_input_embeddings(self) -> nn.Module:
        return self.lm.get_input_embeddings()

    def get_output_embeddings(self) -> nn.Module | None:
        return self.lm.get_output_embeddings()

    def save_pretrained(self, folder: str) -> None:
        self.lm.save_pretrained(folder)

    def forward(self, input_ids, attention_mask, mask_pos, token_type_ids=None) -> PromptOutput:
        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        hidden = getattr(self, self._base)(input_ids=input_ids, attention_mask=attention_mask, **extra)[0]
        at_slot = hidden[torch.arange(hidden.shape[0], device=hidden.device), mask_pos]
        vocabulary = getattr(self, self._head)(at_slot)
        return PromptOutput(logits=vocabulary[:, self.label_ids])


def model_type(model_cfg) -> str:
    """From the YAML's architecture block, else from the model's config.json (local folder or hub cache)."""
    declared = dict(model_cfg.architecture or {}).get("model_type")
    if declared:
        return declared
    source = _source(model_cfg)
    return _from_hub_or_cache(AutoConfig.from_pretrained, source, f"config of '{source}'", "model.path=...").model_type


def is_causal(model_cfg) -> bool:
    return model_type(model_cfg) not in MASKED_LM_TYPES


def _masked_lm(model_cfg, on_meta: bool) -> PreTrainedModel:
    if model_cfg.pretrained:
        source = _source(model_cfg)
        return _from_hub_or_cache(
            AutoModelForMaskedLM.from_pretrained,
            source,
            f"model '{source}'",
            "model.path=/path/to/local/model (or model.pretrained=false for a random init)",
            trust_remote_code=model_cfg.trust_remote_code,
            dtype=torch.float32,  # as models.load_model: adapters of a half-precision checkpoint train in fp32
            **attention_kwargs(model_cfg),
        )
    with torch.device("meta") if on_meta else nullcontext():
        return AutoModelForMaskedLM.from_config(architecture_config(model_cfg), **attention_kwargs(model_cfg))


def load_prompt_model(model_cfg, *, on_meta: bool = False) -> PromptModel:
    causal = is_causal(model_cfg)
    lm = load_causal_lm(model_cfg, on_meta=on_meta) if causal else _masked_lm(model_cfg, on_meta)
    return PromptModel(lm, causal)
