"""The PEFT methods: AdaMix over adapters or LoRA, and the baselines (adapters, LoRA, BitFit, prefix, full, UniPELT).

Methods and their fields: :mod:`.spec`; where each goes: :mod:`.targets` and :mod:`.methods`.

Imports torch and reads transformers configs only; knows nothing of Hydra, tasks or tracking.
"""

from .adapter import AdaptationLayer, AdaptedModule, BottleneckAdapter
from .apply import (
    METHODS,
    AdaptationSpec,
    ParamCounts,
    adaptation_state_dict,
    apply,
    count_parameters,
    head_state_dict,
    load_adaptation_state_dict,
    load_head_state_dict,
    merge,
    router_of,
    trainable_parameters,
)
from .lora import LoRALayer
from .mixture import ExpertLinear
from .prefix import PrefixEncoder, PrefixSelfAttention
from .routing import Router

__all__ = [
    "METHODS",
    "AdaptationLayer",
    "AdaptationSpec",
    "AdaptedModule",
    "BottleneckAdapter",
    "ExpertLinear",
    "LoRALayer",
    "ParamCounts",
    "PrefixEncoder",
    "PrefixSelfAttention",
    "Router",
    "adaptation_state_dict",
    "apply",
    "count_parameters",
    "head_state_dict",
    "load_adaptation_state_dict",
    "load_head_state_dict",
    "merge",
    "router_of",
    "trainable_parameters",
]
