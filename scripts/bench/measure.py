"""Interleaved timing, training memory, and the padding cost of each batching strategy on real text lengths."""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Mapping

import torch
from torch import nn

from adamix_runner.config.compose import compose_config
from adamix_runner.models.encoder import load_tokenizer
from adamix_runner.tasks import polarity
from adamix_runner.training.batching import LengthGroupedSampler


def sync(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def interleaved(cases: Mapping[str, Callable[[], None]], reps: int, warmup: int, device: str) -> dict[str, list]:
    """Seconds per call of each case: round r runs every case once, starting at a rotated position.

    Interleaving spreads the machine's drift (other processes, thermal state) over all cases alike; the rotation
    keeps any case from always following the same neighbour.
    """
    names = list(cases)
    for _ in range(warmup):
        for name in names:
            cases[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(reps):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            sync(device)
            started = time.perf_counter()
            cases[name]()
            sync(device)
            times[name].append(time.perf_counter() - started)
    return times


def _nbytes(params) -> int:
    return sum(p.numel() * p.element_size() for p in params)


def train_memory(model: nn.Module, params: list[nn.Parameter], step: Callable[[], None], device: str) -> int:
    """Peak bytes of one training step.

    Both count this model alone, though every variant's model sits on the device: its weights and two AdamW
    moments per trained parameter (allocated by the warm-up steps), plus what the step adds at its peak. On CUDA
    that is the allocator's peak above what was allocated before the step (gradients included). CPU has no
    allocator peak, so there it is a gradient per trained parameter and every tensor saved for backward (counted
    once per storage by a saved-tensors hook, weights excluded).
    """
    resident = _nbytes(model.parameters()) + 2 * _nbytes(params)
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        step()
        return resident + torch.cuda.max_memory_allocated(device) - before
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in weights:
            saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        step()
    return resident + _nbytes(params) + sum(saved.values())


def _tokenizer():
    """MiniLM's tokenizer (bert-base-uncased's vocabulary), installed with the package: no download."""
    return load_tokenizer(compose_config("model=minilm").model)


def corpus_lengths(max_len: int) -> dict[str, list[int]]:
    """Token lengths of the polarity corpus: its sentences, and GLUE-shaped pairs of two of its sentences.

    No GLUE pair data ships offline; a pair of two polarity sentences (about 2 x 22 words) has MRPC's shape.
    """
    with polarity.fetch().open(encoding="utf-8-sig", newline="") as handle:
        sentences = [row[1].strip() for row in csv.reader(handle) if len(row) == 2]
    tokenizer = _tokenizer()
    single = tokenizer(sentences, truncation=True, max_length=max_len)["input_ids"]
    order = torch.randperm(len(sentences), generator=torch.Generator().manual_seed(0)).tolist()
    partners = [sentences[i] for i in order]
    pairs = tokenizer(sentences, partners, truncation=True, max_length=max_len)["input_ids"]
    return {"polarity sentences": [len(ids) for ids in single], "polarity pairs": [len(ids) for ids in pairs]}


def padding_cost(lengths: list[int], batch: int, max_len: int, seed: int = 0) -> dict[str, dict[str, float]]:
    """Per strategy: tokens per step (padding included) and the fraction of them that is padding, over one epoch."""
    real = sum(lengths)
    steps = -(-len(lengths) // batch)
    random_order = torch.randperm(len(lengths), generator=torch.Generator().manual_seed(seed)).tolist()
    orders = {
        "pad to max_seq_length": None,
        "dynamic padding": random_order,
        "dynamic + length-grouped": list(LengthGroupedSampler(lengths, batch, seed)),
    }
    cost = {}
    for name, order in orders.items():
        if order is None:
            padded = len(lengths) * max_len
        else:
            padded = sum(
                len(chunk) * max(lengths[i] for i in chunk)
                for chunk in (order[at : at + batch] for at in range(0, len(order), batch))
            )
        cost[name] = {"tokens_per_step": padded / steps, "padding_fraction": 1 - real / padded}
    return cost
