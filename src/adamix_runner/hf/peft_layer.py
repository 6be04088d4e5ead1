"""The unmerged AdaMix-LoRA as a PEFT layer, through PEFT's experimental custom-module hook.

``LoraConfig._register_custom_module({nn.Linear: AdaMixLoraLinear})`` makes ``get_peft_model`` build this layer
instead of PEFT's ``lora.Linear``. It is PEFT's own ``lora.Linear`` with ``lora_A`` / ``lora_B`` replaced by the
runner's :class:`~adamix_runner.adaptation.ExpertLinear` (stacked experts ``[M, r, in]`` / ``[M, out, r]``, routed by
one :class:`~adamix_runner.adaptation.Router` per model, merged by the mean), so routing, merging and the eval
modes are the runner's. ``get_delta_weight`` is the merged ``s·B̄·Ā``: ``merge_and_unload()`` gives AdaMix's merge.

The hook is experimental upstream (its docstring: "This API is subject to change"); this module is tested against
peft 0.21.2 (requirements-ci.txt). The registration is not saved in ``adapter_config.json``: register again
before ``PeftModel.from_pretrained(..., config=...)``. Loading without it fails loudly, because PEFT's plain
``lora.Linear`` has 2-D factors and the saved experts are 3-D (a size-mismatch error names the tensor).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

import torch
from peft import LoraConfig
from peft.tuners.lora.layer import Linear as PeftLoraLinear
from peft.utils.other import transpose
from torch import nn

from adamix_runner.adaptation import ExpertLinear, Router
from adamix_runner.adaptation.adapter import SHARE_MODES
from adamix_runner.export import lora_layers, peft_lora_config, write_peft_folder

SETTINGS_ATTR = "_adamix_settings"
ROUTER_ATTR = "_adamix_router"
WEIGHTS_FILE = "adapter_model.safetensors"


@dataclass(frozen=True)
class AdaMixPeftSettings:
    """The mixture's shape and routing seed; kept on the registered config (PEFT does not save them)."""

    num_experts: int
    share: str = "up"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.num_experts < 1:
            raise ValueError(f"num_experts must be >= 1, got {self.num_experts}")
        if self.share not in SHARE_MODES:
            raise ValueError(f"share must be one of {SHARE_MODES}, got {self.share!r}")


def register_adamix_lora(config: LoraConfig, num_experts: int, share: str = "up", seed: int = 0) -> LoraConfig:
    """Register :class:`AdaMixLoraLinear` for ``nn.Linear`` targets on ``config`` (in place) and return it.

    Call it on the config you pass to ``get_peft_model``, and again on the config you pass to
    ``PeftModel.from_pretrained(base, folder, config=...)``; :func:`settings_from_folder` reads the shape back."""
    object.__setattr__(config, SETTINGS_ATTR, AdaMixPeftSettings(num_experts, share, seed))
    config._register_custom_module({nn.Linear: AdaMixLoraLinear})
    return config


def router_of_peft(model: nn.Module) -> Router:
    """The router shared by every AdaMix-LoRA layer of a PEFT model (its ``views(2)`` gives the fused pass)."""
    for module in model.modules():
        if isinstance(module, AdaMixLoraLinear):
            return module.router
    raise ValueError("model has no AdaMixLoraLinear layer: register_adamix_lora(config, ...) before get_peft_model")


def settings_from_folder(folder: str | Path, seed: int = 0) -> dict:
    """``num_experts`` and ``share`` of a saved unmerged AdaMix-LoRA, read from its tensors' shapes (header only)."""
    path = Path(folder) / WEIGHTS_FILE
    with path.open("rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(length))
    shapes = {key: entry["shape"] for key, entry in header.items() if key != "__metadata__"}
    a = {s[0] for k, s in shapes.items() if ".lora_A." in k and len(s) == 3}
    b = {s[0] for k, s in shapes.items() if ".lora_B." in k and len(s) == 3}
    if not a or not b:
        raise ValueError(f"{path} holds no AdaMix experts (3-D lora_A/lora_B): it is a plain LoRA; load it as one")
    num_a, num_b = max(a), max(b)
    experts = max(num_a, num_b)
    share = "none" if num_a == num_b and experts > 1 else ("up" if num_b == 1 else "down")
    return {"num_experts": experts, "share": share, "seed": seed}


def export_peft_unmerged(model: nn.Module, folder: str | Path, seed: int = 0) -> Path:
    """Write the unmerged experts of a model adapted with ``add_adamix`` (LoRA) as a PEFT folder of
    :class:`AdaMixLoraLinear` layers: load it with ``register_adamix_lora(..., **settings_from_folder(folder))``.

    ``nn.Linear`` targets only; GPT-2's fused ``c_attn`` exports merged (``export.export_peft_lora``)."""
    layers = lora_layers(model)
    fused = [
        path for path, layer in layers.items() if layer.slices is not None or not isinstance(layer.base, nn.Linear)
    ]
    if fused:
        raise ValueError(f"the unmerged PEFT export needs nn.Linear targets; {fused[:2]} are not: export it merged")
    first = next(iter(layers.values()))
    num_a, num_b = first.lora_A.num_experts, first.lora_B.num_experts
    share = "none" if num_a == num_b and num_a > 1 else ("up" if num_b == 1 else "down")
    name = getattr(getattr(model, "config", None), "_name_or_path", None) or None
    config = register_adamix_lora(peft_lora_config(model, name), max(num_a, num_b), share, seed)
    ours = {}
    for path, layer in layers.items():
        ours[f"{path}.lora_A.weight"], ours[f"{path}.lora_B.weight"] = layer.lora_A.weight, layer.lora_B.weight
    return write_peft_folder(model, config, ours, Path(folder))


class AdaMixLoraLinear(PeftLoraLinear):
    """PEFT's ``lora.Linear`` whose factors are the runner's stacked, routed experts."""

    def __init__(self, base_layer, adapter_name: str, config: LoraConfig, **kwargs) -> None:
        settings = getattr(config, SETTINGS_ATTR, None)
        if settings is None:
            raise ValueError("AdaMixLoraLinear needs register_adamix_lora(config, num_experts=...) on its LoraConfig")
        if getattr(config, ROUTER_ATTR, None) is None:  # one router per registered config: shared by all layers
            object.__setattr__(config, ROUTER_ATTR, Router(settings.seed))
        self.settings = settings
        self.router = getattr(config, ROUTER_ATTR)
        super().__init__(base_layer, adapter_name, config=config, **kwargs)

    def update_layer(self, adapter_name, r, lora_alpha, config, **kwargs) -> None:
        """PEFT's update (scaling, dropout, PEFT's own A init), then the factors become experts: that A copied into
        every A expert and B zero, as the runner's LoRA starts (adaptation/lora.py)."""
        super().update_layer(adapter_name, r, lora_alpha=lora_alpha, config=config, **kwargs)
        if config.use_dora or config.lora_bias:
            raise ValueError("AdaMixLoraLinear supports plain LoRA only (no DoRA, no lora_bias)")
        share, experts = self.settings.share, self.settings.num_experts
        num_a = 1 if share == "down" else experts
        num_b = 1 if share == "up" else experts
        plain_a = self.lora_A[adapter_name].weight
        kw = {"router": self.router, "init_std": None, "bias": False, "device": plain_a.device, "dtype": plain_a.dtype}
        expert_a = ExpertLinear(self.in_features, r, num_a, **kw)
        with torch.no_grad():
            expert_a.weight.copy_(plain_a.detach().expand_as(expert_a.weight))
        self.lora_A[adapter_name] = expert_a
        self.lora_B[adapter_name] = ExpertLinear(r, self.out_features, num_b, **kw)
        self.set_adapter(self.active_adapters, inference_mode=config.inference_mode)

    def get_delta_weight(self, adapter) -> torch.Tensor:
        """The merged AdaMix update ``s · mean(B) · mean(A)`` (what ``merge``/``merge_and_unload`` add)."""
        weight_a = self.lora_A[adapter].weight.mean(0)
        weight_b = self.lora_B[adapter].weight.mean(0)
        return transpose(weight_b @ weight_a, self.fan_in_fan_out) * self.scaling[adapter]

    def __repr__(self) -> str:
        return "adamix." + super().__repr__()
