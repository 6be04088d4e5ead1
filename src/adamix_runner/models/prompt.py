"""The prompt head: a masked or causal LM read at one position, its vocabulary restricted to the label words.

:class:`PromptModel` adopts the LM's children under their own names (``roberta`` + ``lm_head``, ``bert`` +
``cls``, ``transformer`` / ``model`` + ``lm_head``), so the adaptation targets and the head table apply as they
do to any model of that type, and a fully fine-tuned prompt model saves as the plain LM it wraps. The forward
runs the encoder / decoder stack, takes the hidden state at ``mask_pos`` (the mask slot, or the last token before
the label word for a causal LM), applies the LM head to that one position and keeps the label words' logits:
the same numbers as the full LM logits gathered there, without the [B, T, V] tensor.

LiST's label-word rows (``task.prompt.label_rows=untied``, the default): LiST's prompt model builds its own LM head
whose decoder is not tied to the input embeddings, and trains every ``lm_head`` parameter, so the output rows of
the label words train with the head (LiST src/models.py L242-245, L800-811; fidelity audit D-A3). Here those rows
are :class:`LabelRows`, a copy of the tied rows made at load time, a head module that trains with every method
(adaptation/targets.py HEAD_MODULES); the logits are ``features @ rows.T + vocabulary bias[label ids]``, with
``features`` what the vocabulary projection reads. ``tied`` keeps the earlier behaviour: the tied vocabulary
projection, frozen. Full fine-tuning trains the tied matrix itself, so it never makes the copy.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import AutoConfig, AutoModelForMaskedLM, PreTrainedModel

from adamix_runner.errors import UserError
from adamix_runner.models.causal_lm import load_causal_lm
from adamix_runner.models.load import from_hub_or_cache, load_pretrained, source

MASKED_LM_TYPES = ("bert", "roberta", "xlm-roberta")
LABEL_ROWS = ("untied", "tied")


@dataclass
class PromptOutput:
    logits: torch.Tensor  # [B, number of label words]


class LabelRows(nn.Module):
    """The label words' own output rows [number of label words, hidden] (LiST's untied decoder, restricted to the
    rows its loss reaches)."""

    def __init__(self, rows: torch.Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(rows.detach().clone())


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
        self.label_rows: LabelRows | None = None

    def set_label_words(self, ids: list[int], untied: bool = False) -> None:
        """The label words' vocabulary ids; ``untied`` also gives them their own trainable output rows, copied from
        the tied ones (call it before the method is installed, so that the rows train as part of the head)."""
        self.label_ids = torch.tensor(ids, dtype=torch.long, device=self.label_ids.device)
        if untied:
            self.label_rows = LabelRows(self.get_output_embeddings().weight[self.label_ids])

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
        head = getattr(self, self._head)
        if self.label_rows is None:
            return PromptOutput(logits=head(at_slot)[:, self.label_ids])
        output = self.get_output_embeddings()
        features = []
        hook = output.register_forward_pre_hook(lambda _module, args: features.append(args[0]))
        try:
            head(at_slot)
        finally:
            hook.remove()
        bias = output.bias[self.label_ids] if output.bias is not None else None
        return PromptOutput(logits=nn.functional.linear(features[0], self.label_rows.weight, bias))


def model_type(model_cfg) -> str:
    """From the YAML's architecture block, else from the model's config.json (local folder or hub cache)."""
    declared = dict(model_cfg.architecture or {}).get("model_type")
    if declared:
        return declared
    where = source(model_cfg)
    return from_hub_or_cache(AutoConfig.from_pretrained, where, f"config of '{where}'", "model.path=...").model_type


def is_causal(model_cfg) -> bool:
    return model_type(model_cfg) not in MASKED_LM_TYPES


def load_prompt_model(model_cfg, *, on_meta: bool = False) -> PromptModel:
    """The masked or causal LM (``model.config_overrides`` applied by the shared loader) as a :class:`PromptModel`."""
    causal = is_causal(model_cfg)
    if causal:
        lm = load_causal_lm(model_cfg, on_meta=on_meta)
    else:
        lm = load_pretrained(AutoModelForMaskedLM, model_cfg, on_meta=on_meta)
    return PromptModel(lm, causal)
