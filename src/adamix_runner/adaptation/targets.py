"""Where adaptation goes in each architecture, and which modules are the task head.

Patterns are anchored at a dotted-name boundary and at the end, so that BERT's FFN ``layer.N.output.dense``
matches and ``layer.N.attention.output.dense`` does not (the official code adapts only the FFN output,
reference §1.3; GPT-2's AdaMix-Adapter goes after ``mlp.c_proj``, §5.2). Houlsby adds the attention output
projection; LoRA adapts query and value (GPT-2: the fused ``c_attn``, sliced by the LoRA layer); prefix-tuning
wraps the whole self-attention module.

Llama-style decoders (Llama, Qwen2/3, Mistral, Gemma 1/2; SmolLM is a Llama) share one module layout, so they share
the ``llama`` patterns (:data:`LLAMA_STYLE`). :data:`LORA_TARGET_PRESETS` names where LoRA goes beyond the paper's
query/value (``qv``): every attention projection, the MLP, or both.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

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

# UniPELT's adapter wraps the whole FFN output block (dense, dropout, LayerNorm): it reads the normalised output.
UNIPELT_ADAPTER_TARGETS: dict[str, str] = {
    "bert": r"(^|\.)layer\.\d+\.output$",
    "roberta": r"(^|\.)layer\.\d+\.output$",
    "xlm-roberta": r"(^|\.)layer\.\d+\.output$",
}

LORA_TARGETS: dict[str, str] = {
    "bert": r"(^|\.)layer\.\d+\.attention\.self\.(query|value)$",
    "roberta": r"(^|\.)layer\.\d+\.attention\.self\.(query|value)$",
    "xlm-roberta": r"(^|\.)layer\.\d+\.attention\.self\.(query|value)$",
    "gpt2": r"(^|\.)h\.\d+\.attn\.c_attn$",  # fused QKV: the LoRA layer adapts the Q and V slices only
    "llama": r"(^|\.)layers\.\d+\.self_attn\.(q_proj|v_proj)$",
}

LLAMA_STYLE = ("llama", "qwen2", "qwen3", "mistral", "gemma", "gemma2")

# LoRA placements by preset name; "qv" is the paper's (LORA_TARGETS). GPT-2's "attention" adapts the whole fused
# c_attn (Q, K and V) and the attention output c_proj.
LORA_TARGET_PRESETS: dict[str, dict[str, str]] = {
    "qv": LORA_TARGETS,
    "attention": {
        "bert": r"(^|\.)layer\.\d+\.attention\.(self\.(query|key|value)|output\.dense)$",
        "roberta": r"(^|\.)layer\.\d+\.attention\.(self\.(query|key|value)|output\.dense)$",
        "xlm-roberta": r"(^|\.)layer\.\d+\.attention\.(self\.(query|key|value)|output\.dense)$",
        "gpt2": r"(^|\.)h\.\d+\.attn\.(c_attn|c_proj)$",
        "llama": r"(^|\.)layers\.\d+\.self_attn\.(q_proj|k_proj|v_proj|o_proj)$",
    },
    "mlp": {
        "bert": r"(^|\.)layer\.\d+\.(intermediate|output)\.dense$",
        "roberta": r"(^|\.)layer\.\d+\.(intermediate|output)\.dense$",
        "xlm-roberta": r"(^|\.)layer\.\d+\.(intermediate|output)\.dense$",
        "gpt2": r"(^|\.)h\.\d+\.mlp\.(c_fc|c_proj)$",
        "llama": r"(^|\.)layers\.\d+\.mlp\.(gate_proj|up_proj|down_proj)$",
    },
}
LORA_TARGET_PRESETS["all_linear"] = {
    kind: f"(?:{LORA_TARGET_PRESETS['attention'][kind]})|(?:{LORA_TARGET_PRESETS['mlp'][kind]})"
    for kind in LORA_TARGET_PRESETS["mlp"]
}

PREFIX_TARGETS: dict[str, str] = {
    "bert": r"(^|\.)layer\.\d+\.attention\.self$",
    "roberta": r"(^|\.)layer\.\d+\.attention\.self$",
    "xlm-roberta": r"(^|\.)layer\.\d+\.attention\.self$",
}

# A sequence-classification head, or the LM head that a prompt reads (cls: BERT's MLM head). The vocabulary
# projection of an LM head (the output embeddings, usually tied to the input ones) is not part of the head.
# label_rows: a prompt model's own output rows of its label words (models/prompt.py, LiST's untied decoder).
HEAD_MODULES: dict[str, tuple[str, ...]] = {
    "bert": ("classifier", "cls", "label_rows"),
    "roberta": ("classifier", "lm_head", "label_rows"),
    "xlm-roberta": ("classifier", "lm_head", "label_rows"),
    "gpt2": ("score", "lm_head", "label_rows"),
    "llama": ("score", "lm_head", "label_rows"),
}


def _share_llama_layout() -> None:
    for table in (ADAPTER_TARGETS, ATTENTION_OUTPUT_TARGETS, HEAD_MODULES, *LORA_TARGET_PRESETS.values()):
        for kind in LLAMA_STYLE[1:]:
            table[kind] = table["llama"]


_share_llama_layout()


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


def _vocabulary_weights(model: nn.Module) -> set[int]:
    """Ids of the embedding matrices and of the output embeddings (tied or not): never head parameters."""
    ids = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if output is not None:
        ids.add(id(output.weight))
    return ids


def head_parameters(model: nn.Module, with_pooler: bool = False) -> Iterator[tuple[str, nn.Parameter]]:
    """The head's trainable parameters: everything in the head modules except the vocabulary projection (an LM
    head trains its transform and vocabulary bias only, as LiST's head-only row)."""
    vocabulary = _vocabulary_weights(model)
    for name, module in head_modules(model, with_pooler):
        for pname, param in module.named_parameters(prefix=name):
            if id(param) not in vocabulary:
                yield pname, param
