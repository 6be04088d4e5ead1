"""AdaMix in your own training code: a small API over :mod:`adamix_runner.adaptation`, no Hydra.

Everything here calls the code ``adamix-run`` calls (``adaptation.apply``, ``merge``, the runner's losses and its
adapter folder layout in :mod:`adamix_runner.artifacts`); nothing is implemented twice. Guide:
docs/USE_IN_YOUR_CODE.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from adamix_runner import artifacts
from adamix_runner.adaptation import (
    AdaptationSpec,
    ExpertLinear,
    ParamCounts,
    Router,
    adaptation_state_dict,
    apply,
    count_parameters,
    merge,
    router_of,
)
from adamix_runner.adaptation.targets import LORA_TARGET_PRESETS
from adamix_runner.training.losses import symmetric_kl

KINDS = ("lora", "adapter")
ADAPTER_TARGETS = ("ffn",)  # the paper's place: after each FFN output projection (method reference §1.3)
CONFIG_ATTR = "adamix_config"


@dataclass(frozen=True)
class AdaMixConfig:
    """What :func:`add_adamix` puts into a model.

    ``kind``: ``lora`` (AdaMix-LoRA: ``rank``, ``alpha``, ``dropout``) or ``adapter`` (AdaMix adapters of
    bottleneck ``adapter_dim``). ``targets``: for LoRA one of ``qv`` (the paper's query/value, the default),
    ``attention`` (every attention projection), ``mlp`` or ``all_linear``; for adapters ``ffn``. ``share``: the
    projection all experts share (``up`` | ``down`` | ``none``; official default ``up``). ``seed`` seeds the routing
    generator the model owns; the adaptation weights are initialised from torch's global RNG (seed it yourself, e.g.
    ``transformers.set_seed``), as ``adamix-run`` does. ``consistency_weight`` is read by the trainer and by
    :func:`adamix_loss`.
    """

    kind: str = "lora"
    num_experts: int = 4
    rank: int = 4  # AdaMix-LoRA on GPT-2 (official NLG scripts): r=4, alpha=32
    alpha: float = 32.0
    dropout: float = 0.0
    adapter_dim: int = 16
    share: str = "up"
    targets: str | None = None
    consistency_weight: float = 1.0
    seed: int = 0
    inference: str = "merge"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        allowed = tuple(LORA_TARGET_PRESETS) if self.kind == "lora" else ADAPTER_TARGETS
        if self.targets is None:
            object.__setattr__(self, "targets", allowed[0])
        if self.targets not in allowed:
            raise ValueError(f"targets for kind={self.kind!r} must be one of {allowed}, got {self.targets!r}")
        if self.consistency_weight < 0:
            raise ValueError(f"consistency_weight must be >= 0, got {self.consistency_weight}")
        self.spec()  # every other field is checked where the runner checks it

    def spec(self) -> AdaptationSpec:
        """The runner's method specification for this config."""
        lora = self.kind == "lora"
        return AdaptationSpec(
            method="adamix_lora" if lora else "adamix",
            adapter_dim=self.adapter_dim,
            num_experts=self.num_experts,
            share=self.share,
            inference=self.inference,
            lora_rank=self.rank,
            lora_alpha=self.alpha,
            lora_dropout=self.dropout,
            lora_targets=self.targets if lora else "qv",
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> AdaMixConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown AdaMixConfig keys {unknown}; known: {sorted(known)}")
        return cls(**values)


def add_adamix(model: nn.Module, config: AdaMixConfig) -> nn.Module:
    """Freeze ``model``, put the AdaMix mixtures into it (in place) and return it.

    Only the experts and the task head (a classification head; never an LM's vocabulary projection) train. The model
    owns its routing generator (:func:`router`), seeded with ``config.seed``.
    """
    apply(model, config.spec(), config.seed)
    object.__setattr__(model, CONFIG_ATTR, config)  # plain attribute: not a submodule, not in state_dict
    return model


def config_of(model: nn.Module) -> AdaMixConfig:
    config = getattr(model, CONFIG_ATTR, None)
    if config is None:
        raise ValueError("model has no AdaMix: call add_adamix(model, AdaMixConfig(...)) first")
    return config


def router(model: nn.Module) -> Router:
    """The model's routing generator and mode; its ``state_dict()`` belongs in your checkpoints."""
    return router_of(model)


def merge_adamix(model: nn.Module) -> nn.Module:
    """Collapse every mixture into the mean of its experts (in place): one LoRA / one adapter per layer."""
    merge(model)
    return model


def parameter_counts(model: nn.Module) -> ParamCounts:
    """``trainable`` (all experts and head), ``inference`` (one merged module per layer, the paper's #Param)."""
    return count_parameters(model)


def consistency_loss(logits_a: Tensor, logits_b: Tensor, mask: Tensor | None = None) -> Tensor:
    """AdaMix's symmetric KL between two stochastic views' logits (float32, stop-gradient on each target side).

    ``mask`` ([B, T] of 0/1) restricts token-level logits [B, T, V] to the kept tokens."""
    return symmetric_kl(logits_a, logits_b, mask)


def two_view_forward(model: nn.Module, inputs: Mapping[str, Tensor]):
    """One forward over the batch stacked twice, each copy routed to its own experts (the fused consistency pass).

    Returns the model's output for ``2B`` rows: the first ``B`` are view one. ``labels`` is left out."""
    features = {key: torch.cat([value, value]) for key, value in inputs.items() if key != "labels"}
    with router_of(model).views(2):
        return model(**features)


def save_adamix(model: nn.Module, folder: str | Path, experts: Mapping[str, Tensor] | None = None) -> Path:
    """Write the adaptation weights as they are (unmerged experts, or merged), the head and the config
    (safetensors + ``adapter_config.json``, the runner's adapter layout). ``experts``: the unmerged state of a model
    you have merged (``experts.safetensors``), so that both can be loaded later."""
    config = config_of(model)
    stored = _stored_experts(model)
    meta = {"api": config.to_dict(), "merged": stored == 1, "num_experts": stored}
    if experts is not None:
        meta["experts"] = config.num_experts
    folder = Path(folder)
    artifacts.save_adapter(model, folder, meta, dict(experts) if experts is not None else None)
    return folder


def load_adamix(model: nn.Module, folder: str | Path, experts: bool = False) -> nn.Module:
    """Put the AdaMix saved in ``folder`` into a fresh ``model`` (the same backbone it was trained on) and load its
    weights strictly; ``experts=True`` loads the unmerged experts of a folder that keeps them."""
    folder = Path(folder)
    saved = artifacts.read_adapter_config(folder)
    if "api" not in saved:
        raise ValueError(f"{folder} was not written by save_adamix (no 'api' config); use adamix-evaluate for runs")
    if experts and not artifacts.has_experts(saved, folder):
        raise ValueError(f"{folder} keeps no unmerged experts (save_adamix(..., experts=...) writes them)")
    config = AdaMixConfig.from_dict(saved["api"])
    count = saved["experts"] if experts else saved["num_experts"]
    add_adamix(model, AdaMixConfig.from_dict({**config.to_dict(), "num_experts": count}))
    artifacts.load_adapter(model, folder, experts=experts)
    object.__setattr__(model, CONFIG_ATTR, config)
    return model


def unmerged_state(model: nn.Module) -> dict[str, Tensor]:
    """A copy of the adaptation weights (the experts, before :func:`merge_adamix`)."""
    return {name: tensor.clone() for name, tensor in adaptation_state_dict(model).items()}


def _stored_experts(model: nn.Module) -> int:
    counts = {m.num_experts for m in model.modules() if isinstance(m, ExpertLinear)}
    return max(counts) if counts else 1
