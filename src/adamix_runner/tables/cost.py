"""What one run of a cell computes, in FLOPs: PLAN's cost model (docs/PERFORMANCE.md, "What PLAN counts").

A token costs 2 FLOPs per weight of every matmul it goes through forward. Backward computes the input gradients of
every matmul (2 more per weight) but weight gradients only for trained weights (2 more): a frozen weight costs 4 per
token, a trained one 6 (6N for full fine-tuning, ~4N for a method on a frozen backbone). A mixture counts one
expert, the one a view runs through. Attention's two sequence-by-sequence products add 4 x keys x hidden per token
and layer forward, x3 with backward; a prefix adds its length to the keys. Embedding lookups are not matmuls; the
classification head, the pooler and a prompt model's LM head read one token per row and the prefix encoder runs once
per step, so they are not counted per token. The weights come from the cell's model built on the meta device
(shapes only, no download).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache

from omegaconf import DictConfig, OmegaConf

PER_ROW_MODULES = ("classifier", "pooler", "score", "prefix_encoder")  # not per token: see the module docstring
PREFIX_METHODS = ("prefix", "unipelt")


@dataclass(frozen=True)
class Weights:
    """Matmul weights one token multiplies with (one expert per mixture), and the shapes attention needs."""

    frozen: int
    trained: int
    layers: int
    hidden: int
    how: str  # "model": counted on the built model; "analytic": from the YAML architecture (no method applied)

    def train_per_token(self, keys: float) -> float:
        """FLOPs of forward + backward per token of one view, `keys` the attended sequence length."""
        return 4.0 * self.frozen + 6.0 * self.trained + 3 * 4.0 * keys * self.hidden * self.layers

    def forward_per_token(self, keys: float) -> float:
        """FLOPs of one forward (evaluation, beam search) per token."""
        return 2.0 * (self.frozen + self.trained) + 4.0 * keys * self.hidden * self.layers


def matmul_weights(model, per_row: tuple[str, ...] = PER_ROW_MODULES) -> tuple[int, int]:
    """(frozen, trained) weights a token multiplies with: every Linear / Conv1D / mixture outside the `per_row`
    modules, one expert per mixture."""
    from torch import nn
    from transformers.pytorch_utils import Conv1D

    from adamix_runner.adaptation import ExpertLinear

    frozen = trained = 0
    for name, module in model.named_modules():
        if any(part in per_row for part in name.split(".")):
            continue
        if isinstance(module, ExpertLinear):
            weight, count = module.weight, module.weight[0].numel()
        elif isinstance(module, nn.Linear | Conv1D):
            weight, count = module.weight, module.weight.numel()
        else:
            continue
        if weight.requires_grad:
            trained += count
        else:
            frozen += count
    return frozen, trained


def _shape(architecture: dict) -> tuple[int, int, int]:
    hidden = architecture.get("hidden_size", architecture.get("n_embd"))
    layers = architecture.get("num_hidden_layers", architecture.get("n_layer"))
    ffn = architecture.get("intermediate_size", architecture.get("n_inner")) or 4 * hidden
    return int(layers), int(hidden), int(ffn)


def weights(cfg: DictConfig) -> Weights:
    """The cell's weights per token: its backbone with its method installed, on the meta device."""
    key = {k: OmegaConf.to_container(cfg[k], resolve=True) for k in ("model", "peft", "task")}
    return _weights(json.dumps(key, sort_keys=True, default=str))


@cache
def _weights(key: str) -> Weights:
    from adamix_runner import tasks
    from adamix_runner.adaptation import apply
    from adamix_runner.config.checks import adaptation_spec
    from adamix_runner.pipelines import for_kind

    cfg = OmegaConf.create(json.loads(key))
    architecture = dict(cfg.model.architecture or {})
    layers, hidden, ffn = _shape(architecture)
    if not architecture.get("model_type"):
        frozen = layers * (4 * hidden * hidden + 2 * hidden * ffn)
        full = cfg.peft.method == "full"
        return Weights(0 if full else frozen, frozen if full else 0, layers, hidden, "analytic")
    cfg.model.pretrained = False
    kind = tasks.kind(cfg.task)
    model = for_kind(kind).load_model(cfg, tasks.num_labels(cfg.task), on_meta=True)
    apply(model, adaptation_spec(cfg), 0)
    prompt_head = (model._head,) if kind == "prompt" else ()  # a prompt model reads its LM head at the mask only
    frozen, trained = matmul_weights(model, PER_ROW_MODULES + prompt_head)
    return Weights(frozen, trained, layers, hidden, "model")


def prefix_tokens(cfg: DictConfig) -> int:
    return int(cfg.peft.prefix_length) if cfg.peft.method in PREFIX_METHODS else 0


def expected_batch_max(lengths: list[int], batch: int) -> float:
    """E[longest row of a batch of `batch` rows drawn at random]: what a dynamically padded batch costs per row.
    From the empirical CDF F: P(max <= x) = F(x)^batch (draws with replacement, close for batch << rows)."""
    counts: dict[int, int] = {}
    for length in lengths:
        counts[length] = counts.get(length, 0) + 1
    total, below, expected, previous = len(lengths), 0, 0.0, 0.0
    for length in sorted(counts):
        below += counts[length]
        cdf = (below / total) ** batch
        expected += length * (cdf - previous)
        previous = cdf
    return expected
