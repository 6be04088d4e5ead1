"""The benchmarked variants: one random-init backbone, each method installed exactly as the runner installs it.

Every variant is a deep copy of the same backbone, so the variants differ only by what the method adds. A training
variant is one optimizer step (forward, loss, backward, AdamW); an inference variant is one gradient-free forward
in eval mode.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass

import torch
from peft import LoraConfig, get_peft_model
from torch import nn
from transformers import AutoModelForSequenceClassification

from adamix_runner.adaptation import AdaptationSpec, ExpertLinear, apply, merge, trainable_parameters
from adamix_runner.config.compose import compose_config
from adamix_runner.export import fold_lora
from adamix_runner.models.load import architecture_config
from adamix_runner.training.loop import compile_model
from adamix_runner.training.losses import adamix_loss
from adamix_runner.training.optim import build_optimizer

NUM_LABELS = 2
COMPILED = "AdaMix, fused 2B consistency, compiled"
# One adapter on the stacked [x; x]: the work of a consistency step without the routing, the floor it can reach.
DOUBLE_BATCH = "single adapter, 2B batch"
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class TrainCase:
    """A model, what its optimizer updates, and one training step on the benchmark batch."""

    model: nn.Module
    params: list[nn.Parameter]
    step: Callable[[], None]
    views: int  # forward copies of each example (2: the consistency pass)
    samples: int  # training examples per step


@dataclass(frozen=True)
class Options:
    backbone: str
    batch: int
    seq_len: int
    device: str
    dtype: str
    attn: str
    adapter_dim: int
    num_experts: int
    lora_rank: int
    compile: bool = False


def autocast(options: Options):
    """Mixed precision as Accelerate applies it: autocast around the forward, fp32 weights and optimizer."""
    if options.dtype == "fp32":
        return nullcontext()
    return torch.autocast(torch.device(options.device).type, dtype=DTYPES[options.dtype])


def build_backbone(options: Options) -> nn.Module:
    """The backbone from its conf/model architecture block (model.pretrained=false: same shapes, no download)."""
    cfg = compose_config(f"model={options.backbone}", "model.pretrained=false")
    torch.manual_seed(0)
    config = architecture_config(cfg.model, num_labels=NUM_LABELS)
    model = AutoModelForSequenceClassification.from_config(config, attn_implementation=options.attn)
    return model.to(options.device)


def make_batch(options: Options, vocab_size: int, rows: int) -> dict[str, torch.Tensor]:
    """``rows`` full-length random sequences: a fixed shape, so the variants are timed on identical work."""
    generator = torch.Generator().manual_seed(0)
    shape = (rows, options.seq_len)
    batch = {
        "input_ids": torch.randint(5, vocab_size, shape, generator=generator),
        "attention_mask": torch.ones(shape, dtype=torch.long),
        "labels": torch.randint(NUM_LABELS, (rows,), generator=generator),
    }
    return {key: value.to(options.device) for key, value in batch.items()}


def _spec(options: Options, method: str, num_experts: int = 1) -> AdaptationSpec:
    return AdaptationSpec(
        method,
        options.adapter_dim,
        num_experts,
        share="up" if num_experts > 1 else "none",
        lora_rank=options.lora_rank,
    )


def _adapted(backbone: nn.Module, spec: AdaptationSpec) -> nn.Module:
    model = copy.deepcopy(backbone)
    apply(model, spec, seed=0)
    return model


def _peft_lora(backbone: nn.Module, options: Options) -> nn.Module:
    """HF PEFT's LoRA with our LoRA's settings: same rank, alpha 16, query and value, trained head."""
    config = LoraConfig(
        r=options.lora_rank,
        lora_alpha=16,
        lora_dropout=0.0,
        target_modules=["query", "value"],
        modules_to_save=["classifier"],
    )
    return get_peft_model(copy.deepcopy(backbone), config)


def _trainable(model: nn.Module) -> list[nn.Parameter]:
    if hasattr(model, "adamix_router"):
        return [param for _, param in trainable_parameters(model)]
    return [param for param in model.parameters() if param.requires_grad]


def train_case(
    model: nn.Module, batch: dict, options: Options, views: int, sequential: bool, compiled: bool = False
) -> TrainCase:
    """One optimizer step. ``views=2``: the consistency pass, fused over [x; x] or (``sequential``) as two forwards.
    ``compiled``: the forward runs through the regions ``train.compile=true`` compiles (timed after compiling)."""
    model.train()
    params = _trainable(model)
    optimizer = build_optimizer(model, params, lr=1e-4, weight_decay=0.1)
    if compiled:
        model = compile_model(model)
    inputs = {key: value for key, value in batch.items() if key != "labels"}
    fused = {key: torch.cat([value] * views) for key, value in inputs.items()}
    router = getattr(model, "adamix_router", None)

    def logits() -> torch.Tensor:
        if router is None:
            return model(**inputs).logits
        if sequential:
            with router.views(1):
                return torch.cat([model(**inputs).logits, model(**inputs).logits])
        with router.views(views):
            return model(**fused).logits

    def step() -> None:
        with autocast(options):
            out = logits()
        loss, _ = adamix_loss(out, batch["labels"], NUM_LABELS, 1.0, views)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return TrainCase(model, params, step, views, len(batch["labels"]))


def training_variants(backbone: nn.Module, batch: dict, options: Options) -> dict[str, TrainCase]:
    m = options.num_experts
    full = copy.deepcopy(backbone)
    full.requires_grad_(True)
    adamix = _adapted(backbone, _spec(options, "adamix", m))
    doubled = {key: torch.cat([value, value]) for key, value in batch.items()}
    variants = {
        "full fine-tuning": train_case(full, batch, options, 1, False),
        "single adapter": train_case(_adapted(backbone, _spec(options, "adapter")), batch, options, 1, False),
        DOUBLE_BATCH: train_case(_adapted(backbone, _spec(options, "adapter")), doubled, options, 1, False),
        "AdaMix, no consistency": train_case(adamix, batch, options, 1, False),
        "AdaMix, fused 2B consistency": train_case(
            _adapted(backbone, _spec(options, "adamix", m)), batch, options, 2, False
        ),
        "AdaMix, two sequential passes": train_case(
            _adapted(backbone, _spec(options, "adamix", m)), batch, options, 2, True
        ),
        "our LoRA": train_case(_adapted(backbone, _spec(options, "lora")), batch, options, 1, False),
        "HF PEFT LoRA": train_case(_peft_lora(backbone, options), batch, options, 1, False),
        "AdaMix-LoRA, fused consistency": train_case(
            _adapted(backbone, _spec(options, "adamix_lora", m)), batch, options, 2, False
        ),
    }
    if options.compile:
        compiled = _adapted(backbone, _spec(options, "adamix", m))
        variants[COMPILED] = train_case(compiled, batch, options, 2, False, compiled=True)
    return variants


def _average_at_every_forward(model: nn.Module) -> nn.Module:
    """The official eval: the expert mean is recomputed in every forward (our cache dropped before each call)."""

    def drop_cache(module: ExpertLinear, args) -> None:
        module._merged = None

    for module in model.modules():
        if isinstance(module, ExpertLinear) and module.num_experts > 1:
            module.register_forward_pre_hook(drop_cache)
    return model


def forward(model: nn.Module, batch: dict, options: Options) -> Callable[[], None]:
    model.eval()
    inputs = {key: value for key, value in batch.items() if key != "labels"}

    @torch.no_grad()
    def run() -> None:
        with autocast(options):
            model(**inputs)

    return run


def inference_variants(backbone: nn.Module, batch: dict, options: Options) -> dict[str, Callable[[], None]]:
    m = options.num_experts
    merged = _adapted(backbone, _spec(options, "adamix", m))
    merge(merged)
    cached = _adapted(backbone, _spec(options, "adamix", m))
    on_the_fly = _average_at_every_forward(_adapted(backbone, _spec(options, "adamix", m)))
    models = {
        "base model": copy.deepcopy(backbone),
        "merged AdaMix": merged,
        "single adapter": _adapted(backbone, _spec(options, "adapter")),
        "AdaMix, cached expert mean (eval view)": cached,
        "AdaMix, averaging at every forward (official)": on_the_fly,
        "LoRA folded into the weights": fold_lora(_adapted(backbone, _spec(options, "lora"))),
    }
    return {name: forward(model, batch, options) for name, model in models.items()}
