"""Export an adapted model to formats other tools load: a PEFT LoRA folder, or a plain transformers model.

LoRA and AdaMix-LoRA
    :func:`export_peft_lora` writes ``adapter_config.json`` + ``adapter_model.safetensors`` that
    ``peft.PeftModel.from_pretrained(base_model, folder)`` loads (tested with peft 0.21.2). An AdaMix-LoRA
    mixture is exported merged: Ā = mean of the A experts and B̄ = mean of the B experts (what ``merge`` gives).
    The classification head goes in through ``modules_to_save``; PEFT stores it under the plain module path
    (``base_model.model.classifier.dense.weight``; ``.modules_to_save.default`` is added back on load).

    GPT-2's fused ``c_attn``: PEFT's LoRA adapts the whole 3d output, so the Q and V factors are exported as one
    rank-2r LoRA: A = [A_q; A_v] ([2r, d], unchanged) and B = [[B_q, 0], [0, 0], [0, B_v]] ([3d, 2r]: the K rows
    are zero and each third reads only its own r columns); ``lora_alpha`` is doubled so that alpha'/(2r) equals
    our alpha/r. The extra terms are exact zeros, so logits match to float rounding.

    :func:`fold_lora` adds ``s·B̄·Ā`` into the frozen weights and returns a plain transformers model (no wrapper,
    no router); :func:`export_folded` saves it with ``save_pretrained``. Full fine-tuning and BitFit have no added
    modules and fold trivially. Bottleneck adapters and prefixes cannot be folded into the backbone weights (the
    adapter has a GELU between its projections; a prefix adds attention keys), so both functions refuse them.

UniPELT
    Refused by both (:func:`refuse_gates`): each gate is a function of the gated module's input, which neither a
    PEFT LoRA folder nor folded weights can hold. A UniPELT run's format is its ``adapter/`` folder.

Bottleneck adapters (AdaMix merged, Pfeiffer, Houlsby)
    These keep the runner's own documented layout (``artifacts.py``: ``adaptation.safetensors``,
    ``head.safetensors``, ``adapter_config.json``). Could the ``adapters`` library (AdapterHub) hold them instead?
    Read from its source (``adapters/methods/modeling.py`` ``Adapter``, ``bottleneck.py`` and the BERT/RoBERTa
    ``*OutputWithAdapters`` classes), not installed: every ``adapters`` release pins a 4.x ``transformers``
    (``transformers~=4.x`` in its setup), which conflicts with this project's transformers 5.

    - Placement: AdapterHub calls ``bottleneck_layer_forward(dropout(dense(h)), input_tensor, LayerNorm)``, so its
      output adapter sits after the FFN output dense **and after the sublayer dropout**, before the residual add
      and LayerNorm. AdaMix (official ``ExpertSoup``, this runner) sits after the dense and **before** the dropout:
      ``LN(dropout(a(dense(h))) + x)`` against AdapterHub's ``LN(a(dropout(dense(h))) + x)``.
    - Block: ``BnConfig(mh_adapter=False, output_adapter=True, reduction_factor=d / adapter_dim,
      non_linearity="gelu", original_ln_before=False, original_ln_after=True, residual_before_ln=True,
      ln_before=False, ln_after=False, scaling=1.0, init_weights="bert")`` gives ``h + up(gelu(down(h)))`` with
      exact GELU (``transformers.get_activation("gelu")``), no internal LayerNorm, residual inside, then the
      model's own residual + LayerNorm: the same block. Houlsby adds ``mh_adapter=True`` (same placement rule
      after the attention output dense). Weights would map ``down -> adapter_down.0``, ``up -> adapter_up``.

    Conclusion: a *merged* AdaMix adapter (and Pfeiffer/Houlsby) is expressible exactly **at inference** (dropout
    is the identity in eval mode), but AdapterHub cannot express the AdaMix placement for training (the dropout
    order differs) and has no mixture/routing, so an unmerged AdaMix is not expressible at all. We therefore do not
    write an AdapterHub folder; the mapping above is what a converter would use.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from peft import LoraConfig, get_peft_model, get_peft_model_state_dict
from safetensors.torch import save_file
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel

from adamix_runner.adaptation import head_state_dict
from adamix_runner.adaptation.adapter import AdaptationLayer
from adamix_runner.adaptation.apply import ROUTER_ATTR
from adamix_runner.adaptation.lora import LoRALayer
from adamix_runner.adaptation.methods import SPEC_ATTR, trained_head_modules, trained_head_parameters
from adamix_runner.adaptation.unipelt import Gate

PEFT_PREFIX = "base_model.model."


def refuse_gates(model: nn.Module) -> None:
    """UniPELT's gates scale each submodule by a function of its input: no fixed weights express that."""
    gates = [name for name, m in model.named_modules() if isinstance(m, Gate)]
    if gates:
        raise ValueError(
            "UniPELT's gates depend on each input (a sigmoid of the gated module's input), so neither a PEFT LoRA "
            "folder nor folded backbone weights can express them; the run's adapter/ folder (adaptation.safetensors "
            f"+ head.safetensors, artifacts.py) is its format (gates at {gates[:2]})"
        )


def lora_layers(model: nn.Module) -> dict[str, LoRALayer]:
    """The model's LoRA layers by module path; refuses models adapted with anything else."""
    refuse_gates(model)
    layers = {name: m for name, m in model.named_modules() if isinstance(m, LoRALayer)}
    others = [name for name, m in model.named_modules() if isinstance(m, AdaptationLayer) and name not in layers]
    if others or not layers:
        raise ValueError(
            "PEFT LoRA export needs a model adapted with method 'lora' or 'adamix_lora'"
            + (f"; found other adaptation layers at {others[:3]}" if others else "")
        )
    return layers


def peft_lora_config(model: nn.Module, base_model_name_or_path: str | None = None) -> LoraConfig:
    layers = lora_layers(model)
    first = next(iter(layers.values()))
    groups = 1 if first.slices is None else len(first.slices)
    spec = getattr(model, SPEC_ATTR, None)
    trained = {id(p) for _, p in trained_head_parameters(model)}  # an LM head with nothing besides the vocabulary
    heads = [
        name for name, module in trained_head_modules(model) if any(id(p) in trained for p in module.parameters())
    ]
    return LoraConfig(
        r=first.rank * groups,
        lora_alpha=first.alpha * groups,  # alpha'/r' == alpha/r
        lora_dropout=spec.lora_dropout if spec is not None else 0.0,
        target_modules=list(layers),
        fan_in_fan_out=type(first.base).__name__ == "Conv1D",  # GPT-2 Conv1D stores [in, out]
        bias="none",
        modules_to_save=heads or None,
        task_type="SEQ_CLS" if heads else None,
        base_model_name_or_path=base_model_name_or_path,
    )


def export_peft_lora(
    model: nn.Module, base_model_name_or_config: str | PretrainedConfig | None, folder: str | Path
) -> Path:
    """Write ``model``'s (merged) LoRA and head as a PEFT adapter folder; returns the folder.

    ``base_model_name_or_config``: the hub id or path the adapter belongs to (recorded as
    ``base_model_name_or_path``), or a config whose ``_name_or_path`` is used; ``None`` records nothing.
    The folder's tensor names come from PEFT itself, applied to a skeleton of the model on the meta device.
    """
    folder = Path(folder)
    name = base_model_name_or_config
    if isinstance(name, PretrainedConfig):
        name = getattr(name, "_name_or_path", None) or None
    config = peft_lora_config(model, name)
    layers = lora_layers(model)
    ours: dict[str, torch.Tensor] = {}
    for path, layer in layers.items():
        ours[f"{path}.lora_A.weight"], ours[f"{path}.lora_B.weight"] = layer.merged_factors()  # PEFT's layout
    return write_peft_folder(model, config, ours, folder)


def write_peft_folder(model: nn.Module, config: LoraConfig, ours: dict[str, torch.Tensor], folder: Path) -> Path:
    """Save ``ours`` (LoRA tensors by module path) and the head under the tensor names PEFT itself gives ``config``
    on a skeleton of ``model`` on the meta device, with ``config``; every tensor must find its name."""
    ours = {**ours, **head_state_dict(model)}
    with torch.device("meta"):
        skeleton = type(model)(copy.deepcopy(model.config))
    probe = copy.deepcopy(config)
    probe.base_model_name_or_path = None  # the skeleton has no name; keep peft from warning about a rename
    peft_keys = get_peft_model_state_dict(get_peft_model(skeleton, probe))
    state = {}
    for key, meta in peft_keys.items():
        mapped = key.removeprefix(PEFT_PREFIX).replace(".modules_to_save.default", "")
        if mapped not in ours or ours[mapped].shape != meta.shape:
            raise ValueError(f"PEFT expects {key} {tuple(meta.shape)}; the model has no such tensor")
        state[key] = ours.pop(mapped).detach().to("cpu").contiguous()
    if ours:
        raise ValueError(f"tensors not covered by the PEFT layout: {sorted(ours)}")
    folder.mkdir(parents=True, exist_ok=True)
    save_file(state, str(folder / "adapter_model.safetensors"), metadata={"format": "pt"})
    config.save_pretrained(str(folder))
    return folder


def fold_lora(model: nn.Module) -> PreTrainedModel:
    """A plain copy of ``model`` with ``W += s·B̄·Ā`` folded in and every wrapper removed (``model`` unchanged).

    Also serves ``full`` and ``bitfit`` (nothing to fold); refuses adapters and prefixes.
    """
    refuse_gates(model)
    others = [n for n, m in model.named_modules() if isinstance(m, AdaptationLayer) and not isinstance(m, LoRALayer)]
    if others:
        raise ValueError(f"only LoRA folds into the backbone weights; found other adaptation layers at {others[:3]}")
    memo = {id(getattr(model, ROUTER_ATTR, None)): None}  # generators stay behind: the copy needs no router
    plain = copy.deepcopy(model, memo)
    for attr in (ROUTER_ATTR, SPEC_ATTR):
        plain.__dict__.pop(attr, None)
    for path, layer in [(n, m) for n, m in plain.named_modules() if isinstance(m, LoRALayer)]:
        base = layer.base
        with torch.no_grad():
            delta = layer.merged_weight_delta().to(base.weight.dtype)
            base.weight += delta if isinstance(base, nn.Linear) else delta.T  # Conv1D weight is [in, out]
        parent, _, child = path.rpartition(".")
        setattr(plain.get_submodule(parent), child, base)
    plain.requires_grad_(True)
    return plain


def export_folded(model: nn.Module, folder: str | Path) -> Path:
    """``fold_lora(model).save_pretrained(folder)``: a standalone transformers model folder."""
    folder = Path(folder)
    fold_lora(model).save_pretrained(str(folder))
    return folder
