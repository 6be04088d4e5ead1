"""Put a method into a model, and read back what trains: freezing, merging, state dicts, parameter counts.

Everything here reads the adaptation layers' own declaration (:meth:`AdaptationLayer.adaptation_parameters`)
and the head table in :mod:`.targets`; nothing matches substrings of parameter names.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from .adapter import AdaptationLayer
from .methods import install, trained_head_modules, trained_head_parameters, tuned_backbone_parameters
from .mixture import ExpertLinear
from .routing import Router
from .spec import METHODS, AdaptationSpec  # noqa: F401  (defined in .spec, re-exported from here)

ROUTER_ATTR = "adamix_router"


@dataclass(frozen=True)
class ParamCounts:
    """Parameter counts; ``inference`` follows the paper's #Param for every method (reference §7-§8).

    ``inference``: what the adapted model uses at inference besides the frozen backbone, without the head:
    one merged adapter / LoRA pair per target (weights and biases), the 2·L·P·d prefix keys/values (not the
    reparameterisation MLP), the biases for BitFit, the whole backbone for full fine-tuning, and UniPELT's gates
    (input-dependent, so they stay at inference).
    ``backbone``: the pretrained model's parameters (those tuned in place by ``full``/``bitfit`` included),
    without added modules and head. ``trainable``: what the optimizer gets (all experts, MLP and head).
    """

    trainable: int
    inference: int
    backbone: int
    head: int


def apply(model: nn.Module, spec: AdaptationSpec, seed: int) -> Router:
    """Freeze ``model``, install the method (:mod:`.methods`), unfreeze what it trains and the head, attach
    the router.

    Adaptation weights are initialised from torch's global RNG (the caller seeds it) on the target's device
    and dtype, so a model built on ``torch.device("meta")`` stays on meta.
    """
    if hasattr(model, ROUTER_ATTR):
        raise ValueError("model is already adapted; apply() once per model")
    router = Router(seed, spec.inference, spec.fixed_expert)
    model.requires_grad_(False)
    install(model, spec, router)
    for _, param in _adaptation_parameters(model):
        param.requires_grad_(True)
    for _, param in _head_parameters(model):
        param.requires_grad_(True)
    object.__setattr__(model, ROUTER_ATTR, router)  # plain attribute: not a submodule, not in state_dict
    router.route_layers([module for module in model.modules() if isinstance(module, ExpertLinear)])
    # Functions, not the router's bound methods, so that a deep copy of the model copies its hooks. Regional
    # compilation copies the top module's hooks into the module it returns.
    model.register_forward_pre_hook(_draw_routes)
    model.register_forward_hook(_clear_routes, always_call=True)
    return router


def _draw_routes(model: nn.Module, args) -> None:
    # A copy whose router was taken off (export.fold_lora's plain model) keeps the hooks, and has no mixture left.
    router = getattr(model, ROUTER_ATTR, None)
    if router is not None:
        router.draw_routes()


def _clear_routes(model: nn.Module, args, output) -> None:
    router = getattr(model, ROUTER_ATTR, None)
    if router is not None:
        router.clear_routes()


def router_of(model: nn.Module) -> Router:
    router = getattr(model, ROUTER_ATTR, None)
    if router is None:
        raise ValueError("model has no router: call adaptation.apply(model, spec, seed) first")
    return router


def merge(model: nn.Module) -> None:
    """Collapse every mixture into the mean of its experts: the model becomes a plain adapter. Idempotent."""
    for module in model.modules():
        if isinstance(module, ExpertLinear):
            module.merge_()


def _adaptation_layers(model: nn.Module) -> Iterator[tuple[str, AdaptationLayer]]:
    for name, module in model.named_modules():
        if isinstance(module, AdaptationLayer):
            yield name, module


def _added_parameters(model: nn.Module) -> Iterator[tuple[str, nn.Parameter]]:
    for name, layer in _adaptation_layers(model):
        for pname, param in layer.adaptation_parameters():
            yield f"{name}.{pname}", param


def _adaptation_parameters(model: nn.Module) -> Iterator[tuple[str, nn.Parameter]]:
    """Added modules' declared parameters, then backbone parameters tuned in place (full, BitFit)."""
    yield from _added_parameters(model)
    yield from tuned_backbone_parameters(model)


def _head_parameters(model: nn.Module) -> Iterator[tuple[str, nn.Parameter]]:
    yield from trained_head_parameters(model)


def trainable_parameters(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """The declared adaptation parameters and the head's, in module order (what the optimizer gets)."""
    chosen = {id(p) for _, p in _adaptation_parameters(model)} | {id(p) for _, p in _head_parameters(model)}
    return [(name, p) for name, p in model.named_parameters() if id(p) in chosen]


def adaptation_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach() for name, p in _adaptation_parameters(model)}


def head_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Head parameters (not an LM head's vocabulary projection) and buffers, keyed as in ``model.state_dict()``."""
    state = {name: p.detach() for name, p in trained_head_parameters(model)}
    for name, module in trained_head_modules(model):
        persistent = module.state_dict(keep_vars=True)
        state.update({f"{name}.{k}": v.detach() for k, v in module.named_buffers() if k in persistent})
    return state


def load_adaptation_state_dict(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    _load_strict(model, adaptation_state_dict(model), state, "adaptation")


def load_head_state_dict(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    _load_strict(model, head_state_dict(model), state, "head")


def _load_strict(
    model: nn.Module, expected: dict[str, torch.Tensor], state: dict[str, torch.Tensor], what: str
) -> None:
    """Check keys and shapes against ``expected``, then load via ``load_state_dict`` (drops merge caches)."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [
        f"{k}: expected {tuple(expected[k].shape)}, got {tuple(state[k].shape)}"
        for k in sorted(set(expected) & set(state))
        if state[k].shape != expected[k].shape
    ]
    problems = []
    if missing:
        problems.append(f"missing keys {missing}")
    if unexpected:
        problems.append(f"unexpected keys {unexpected}")
    if wrong:
        problems.append(f"shape mismatch {wrong}")
    if problems:
        raise ValueError(f"cannot load {what} state: " + "; ".join(problems))
    model.load_state_dict(state, strict=False)


def count_parameters(model: nn.Module) -> ParamCounts:
    added = sum(p.numel() for _, p in _added_parameters(model))
    tuned = sum(p.numel() for _, p in tuned_backbone_parameters(model))
    head = sum(p.numel() for _, p in _head_parameters(model))
    total = sum(p.numel() for p in model.parameters())
    return ParamCounts(
        trainable=added + tuned + head,
        inference=sum(layer.inference_numel() for _, layer in _adaptation_layers(model)) + tuned,
        backbone=total - added - head,
        head=head,
    )
