"""Install each method into a model: which modules get wrapped, and which backbone parameters train in place.

Two kinds of methods:
- added modules (adapters, LoRA, prefix): an :class:`AdaptationLayer` declares its own parameters;
- in-place tuning (``full``, ``bitfit``): no module is added; :func:`tuned_backbone_parameters` names the
  backbone parameters that train, by module structure (a module's own ``bias`` parameter), never by matching
  substrings of parameter names.
"""

from __future__ import annotations

from collections.abc import Iterator

from torch import nn

from .adapter import AdaptedModule, BottleneckAdapter
from .lora import LoRALayer, lora_for, share_initial_a
from .prefix import PrefixEncoder, PrefixSelfAttention
from .routing import Router
from .soft_prompt import SoftPromptEmbedding, soft_prompt_offset
from .spec import AdaptationSpec
from .targets import (
    ADAPTER_TARGETS,
    ATTENTION_OUTPUT_TARGETS,
    LORA_TARGET_PRESETS,
    PREFIX_TARGETS,
    head_modules,
    head_parameters,
    matching,
    model_type,
)
from .unipelt import GatedAdaptedModule, GatedLoRALayer, GatedPrefixSelfAttention, gate_like

SPEC_ATTR = "adamix_spec"
PREFIX_ENCODER = "prefix_encoder"


def install(model: nn.Module, spec: AdaptationSpec, router: Router) -> None:
    """Wrap the method's targets in ``model`` (in place); ``full``, ``bitfit`` and ``head`` add nothing."""
    method = spec.method
    if method in ("adamix", "adapter", "pfeiffer", "houlsby"):
        names = matching(model, ADAPTER_TARGETS, method)
        if method == "houlsby" or spec.adapter_form == "list":
            names = matching(model, ATTENTION_OUTPUT_TARGETS, method) + names
        for name in names:
            _replace(model, name, _adapted(model, model.get_submodule(name), spec, router))
    elif method in ("lora", "adamix_lora"):
        _install_lora(model, spec, router, LoRALayer)
    elif method == "prefix":
        _install_prefix(model, spec, PrefixSelfAttention)
    elif method == "unipelt":
        _install_unipelt(model, spec, router)
    elif method == "prompt_tuning":
        _install_soft_prompt(model, spec)
    object.__setattr__(model, SPEC_ATTR, spec)  # plain attribute: not a submodule, not in state_dict


def _install_unipelt(model: nn.Module, spec: AdaptationSpec, router: Router) -> None:
    """The chosen components at their own methods' places, each wrapped with its gate (adaptation/unipelt.py).

    LoRA goes in before the prefix: the prefix wraps the whole self-attention, whose query/value are then LoRA's.
    """
    if "prefix" in spec.components:
        _check_prefix_supported(model)  # before anything is wrapped
    if "adapter" in spec.components:
        for name in matching(model, ADAPTER_TARGETS, "unipelt"):
            _replace(model, name, _adapted(model, model.get_submodule(name), spec, router, gated=True))
    if "lora" in spec.components:
        _install_lora(model, spec, router, GatedLoRALayer)
    if "prefix" in spec.components:
        _install_prefix(model, spec, GatedPrefixSelfAttention)


def _install_lora(model: nn.Module, spec: AdaptationSpec, router: Router, layer_type: type) -> None:
    kind = model_type(model)
    layers = []
    for name in matching(model, LORA_TARGET_PRESETS[spec.lora_targets], spec.method):
        layers.append(lora_for(model.get_submodule(name), kind, spec, router, layer_type))
        _replace(model, name, layers[-1])
    if spec.lora_shared_init:
        share_initial_a(layers)


def _adapted(
    model: nn.Module, base: nn.Module, spec: AdaptationSpec, router: Router, gated: bool = False
) -> AdaptedModule:
    ref = next(base.parameters())
    adapter = BottleneckAdapter(
        model.config.hidden_size,
        spec.adapter_dim,
        spec.num_experts,
        spec.share,
        router,
        spec.init_std,
        device=ref.device,
        dtype=ref.dtype,
        expert_init=spec.expert_init,
        up_init=spec.up_init,
        activation="linear" if spec.adapter_form == "list" else spec.adapter_activation,
        bias=spec.adapter_form != "list",
    )
    if gated:
        return GatedAdaptedModule(base, adapter, gate_like(model.config.hidden_size, ref))
    return AdaptedModule(base, adapter)


def _install_soft_prompt(model: nn.Module, spec: AdaptationSpec) -> None:
    embedding = model.get_input_embeddings()
    name = next(n for n, m in model.named_modules() if m is embedding)
    offset = soft_prompt_offset(model_type(model))
    _replace(model, name, SoftPromptEmbedding(embedding, spec.prefix_length, offset))


def _check_prefix_supported(model: nn.Module) -> None:
    kind = model_type(model)
    if kind not in PREFIX_TARGETS:
        raise ValueError(
            f"prefix-tuning is implemented for BERT/RoBERTa self-attention only, not model_type {kind!r}: GPT-2's "
            "causal attention would need its own causal mask over [prefix; sequence] and KV-cache handling "
            f"(see adaptation/prefix.py); supported: {sorted(PREFIX_TARGETS)}"
        )


def _install_prefix(model: nn.Module, spec: AdaptationSpec, attention_type: type) -> None:
    _check_prefix_supported(model)
    names = matching(model, PREFIX_TARGETS, "prefix")
    owner = names[0][: names[0].rindex("layer.")].rstrip(".")  # the encoder holding the layer list
    ref = next(model.get_submodule(names[0]).parameters())
    encoder = PrefixEncoder(
        len(names),
        model.config.hidden_size,
        spec.prefix_length,
        spec.prefix_hidden,
        device=ref.device,
        dtype=ref.dtype,
    )
    encoder.train(model.training)
    model.get_submodule(owner).add_module(PREFIX_ENCODER, encoder)
    for layer, name in enumerate(names):
        _replace(model, name, attention_type(model.get_submodule(name), encoder, layer))


def _replace(model: nn.Module, name: str, module: nn.Module) -> None:
    """Put ``module`` in place of ``name``, in the replaced module's train/eval mode (an eval model stays eval)."""
    parent, _, child = name.rpartition(".")
    module.train(model.get_submodule(name).training)
    setattr(model.get_submodule(parent), child, module)


def spec_of(model: nn.Module) -> AdaptationSpec | None:
    return getattr(model, SPEC_ATTR, None)


def trained_head_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The head modules that train with every method: the task head, and the pooler when the spec says so."""
    spec = spec_of(model)
    return head_modules(model, with_pooler=spec is not None and spec.train_pooler)


def trained_head_parameters(model: nn.Module) -> Iterator[tuple[str, nn.Parameter]]:
    """The parameters of :func:`trained_head_modules` that train (never an LM head's vocabulary projection)."""
    spec = spec_of(model)
    yield from head_parameters(model, with_pooler=spec is not None and spec.train_pooler)


def tuned_backbone_parameters(model: nn.Module) -> Iterator[tuple[str, nn.Parameter]]:
    """Backbone parameters trained in place: every one (``full``) or each module's own bias (``bitfit``)."""
    spec = spec_of(model)
    if spec is None or spec.method not in ("full", "bitfit"):
        return
    heads = {id(p) for _, p in trained_head_parameters(model)}
    seen: set[int] = set()
    for module_name, module in model.named_modules():
        for pname, param in module.named_parameters(recurse=False):
            if param is None or id(param) in heads or id(param) in seen:
                continue
            if spec.method == "bitfit" and pname != "bias":
                continue
            seen.add(id(param))
            yield (f"{module_name}.{pname}" if module_name else pname), param
