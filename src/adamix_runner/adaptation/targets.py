"""Where adaptation goes in each architecture, and which modules are the task head.

Patterns are anchored at a dotted-name boundary and at the end, so that BERT's FFN ``layer.N.output.dense``
matches and ``layer.N.attention.output.dense`` does not (the official code adapts only the FFN output,
reference §1.3; GPT-2's AdaMix-Adapter goes after ``mlp.c_proj``, §5.2). Houlsby adds the attention output
projection; LoRA adapts query and value (GPT-2: the fused ``c_attn``, sliced by the LoRA layer); prefix-tuning
wraps the whole self-attention module.
"""

from __future__ import annotations

import re

from torch import nn

ADAPTER_TARGETS: dict[str, str] = {
    "bert": r"(^|\.)layer\.\d+\.output\.dense$",
    "roberta": r"(^|\.)layer\.\d+\.output\.dense$",
    "xlm-roberta": r"(^|\.)layer\.\d+\.output\.dense$",
    "gpt2": r"(^|\.)h\.\d+\.mlp\.c_proj$",
    "llama": r"(^|\.)layers\.\d+\.mlp\.down_proj$",
}

ATTENTION_OUTPUT_TARGETS: dict[str, str] = {
    "bert": r"(^|\.)layer\.\d+\.attention\.output\.dense$",
    "roberta": r"(^|\.)layer\.\d+\.attention\.output\.dense$",
    "xlm-roberta": r"(^|\.)layer\.\d+\.attention\.output\.dense$",
    "gpt2": r"(^|\.)h\.\d+\.attn\.c_proj$",
    "llama": r"(^|\.)layers\.\d+\.self_attn\.o_proj$",
}

LORA_TARGETS: dict[str, str] = {
    "bert": r"(^|\.)layer\.\d+\.attention\.self\.(query|value)$",
    "roberta": r"(^|\.)layer\.\d+\.attention\.self\.(query|value)$",
    "xlm-roberta": r"(^|\.)layer\.\d+\.attention\.self\.(query|value)$",
    "gpt2": r"(^|\.)h\.\d+\.attn\.c_attn$",  # fused QKV: the LoRA layer adapts the Q and V slices only
    "llama": r"(^|\.)layers\.\d+\.self_attn\.(q_proj|v_proj)$",
}

PREFIX_TARGETS: dict[str, str] = {
    "bert": r"(^|\.)layer\.\d+\.attention\.self$",
    "roberta": r"(^|\.)layer\.\d+\.attention\.self$",
    "xlm-roberta": r"(^|\.)layer\.\d+\.attention\.self$",
}

HEAD_MODULES: dict[str, tuple[str, ...]] = {
    "bert": ("classifier",),
    "roberta": ("classifier",),
    "xlm-roberta": ("classifier",),
    "gpt2": ("score",),
    "llama": ("score",),
}


def model_type(model: nn.Module) -> str:
    """The architecture key (``config.model_type``); unknown ones fail with the supported list."""
    kind = getattr(getattr(model, "config", None), "model_type", None)
    if kind not in ADAPTER_TARGETS:
        raise ValueError(f"unsupported model_type {kind!r}; supported: {sorted(ADAPTER_TARGETS)}")
    return kind


def matching(model: nn.Module, table: dict[str, str], method: str = "this method") -> list[str]:
    """Names of the modules matched by ``table[model_type]``, in module order."""
    kind = model_type(model)
    if kind not in table:
        raise ValueError(f"{method} is not available for model_type {kind!r}; supported: {sorted(table)}")
    pattern = re.compile(table[kind])
    names = [name for name, _ in model.named_modules() if pattern.search(name)]
    if not names:
        raise ValueError(
            f"no module of this {kind} model matches {pattern.pattern!r}; "
            f"supported model types: {sorted(ADAPTER_TARGETS)}"
        )
    return names


# The pretrained pooler that a head reads (BERT's dense + tanh over [CLS]); ``model.train_pooler=true`` trains it
# as part of the head. RoBERTa's classification head has its own dense layer and no pooler.
POOLER_MODULES: dict[str, str] = {"bert": "bert.pooler"}


def head_modules(model: nn.Module, with_pooler: bool = False) -> list[tuple[str, nn.Module]]:
    """The task head modules present in ``model`` (a bare backbone such as ``GPT2Model`` has none), and with
    ``with_pooler`` the pooler the head reads, first (it comes first in the forward pass)."""
    kind = model_type(model)
    present = dict(model.named_children())
    heads = [(name, present[name]) for name in HEAD_MODULES[kind] if name in present]
    if not with_pooler:
        return heads
    pooler = POOLER_MODULES.get(kind)
    module = _submodule(model, pooler) if pooler else None
    if module is None:
        raise ValueError(f"train_pooler needs a pooler that the head reads; supported: {sorted(POOLER_MODULES)}")
    return [(pooler, module), *heads]


def _submodule(model: nn.Module, name: str) -> nn.Module | None:
    try:
        return model.get_submodule(name)
    except AttributeError:
        return None
