"""The training DataLoader: shuffled batches, optionally grouped by length so that dynamic padding pads less.

With dynamic padding a batch costs its longest row times its size; batches of similar lengths waste fewer padded
tokens (measured in docs/PERFORMANCE.md). The grouped order is a function of (seed, epoch) alone, like Accelerate's
seedable sampler, so every rank draws the same order and a resumed run (`set_epoch`, then skipping the batches
already done) sees the same batches as an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import pyarrow.compute as pc
import torch
from datasets import Dataset
from torch.utils.data import DataLoader, Sampler
from transformers.trainer_pt_utils import get_length_grouped_indices

MEGABATCH_FACTOR = 50  # sort within windows of 50 batches (transformers' default for large sets)


def token_lengths(dataset: Dataset) -> list[int]:
    """The tokenized length of every row, read from Arrow without materializing the token lists."""
    return pc.list_value_length(dataset.with_format("arrow")["input_ids"]).to_pylist()


class LengthGroupedSampler(Sampler[int]):
    """transformers' length-grouped order (``get_length_grouped_indices``: a seeded permutation, each window of
    ``50 x batch_size`` rows sorted by length, the longest row moved to the front so that an out-of-memory error
    shows at step one), drawn from (seed, epoch) alone instead of the global RNG."""

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Called by Accelerate's prepared loader at each epoch: the order depends on (seed, epoch) only."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(get_length_grouped_indices(self.lengths, self.batch_size, MEGABATCH_FACTOR, generator))


def make_train_loader(
    dataset: Dataset,
    batch_size: int,
    collate_fn: Callable,
    group_by_length: bool,
    num_workers: int,
    *,
    seed: int,
) -> DataLoader:
    """The training loader, before ``accelerator.prepare``; it owns its generator, so iterating it (workers'
    seeds included) never draws from the global RNG and a resumed run stays exact.

    Without grouping it is a plain shuffled loader: Accelerate swaps its RandomSampler for the seedable one
    (``use_seedable_sampler=True``), which keeps the historical order and pinned losses. With grouping the sampler
    is :class:`LengthGroupedSampler`, seeded with ``seed``.
    """
    own = {
        "collate_fn": collate_fn,
        "generator": torch.Generator().manual_seed(seed),
        "num_workers": num_workers,
        "persistent_workers": num_workers > 0,
    }
    if not group_by_length:
        return DataLoader(dataset, batch_size, shuffle=True, **own)
    return DataLoader(
        dataset, batch_size, sampler=LengthGroupedSampler(token_lengths(dataset), batch_size, seed), **own
    )
