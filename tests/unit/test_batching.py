"""The training loader: seeded length grouping, and its fit with Accelerate (epochs, resume, sharding)."""

from __future__ import annotations

import itertools

import pytest
import torch
from accelerate import Accelerator
from accelerate.data_loader import prepare_data_loader
from accelerate.utils import DataLoaderConfiguration
from datasets import Dataset

from adamix_runner.training.batching import LengthGroupedSampler, make_train_loader, token_lengths

LENGTHS = [int(n) for n in torch.randint(4, 120, (600,), generator=torch.Generator().manual_seed(0))]


def _dataset(lengths=LENGTHS) -> Dataset:
    return Dataset.from_dict({"input_ids": [[1] * n for n in lengths], "labels": list(range(len(lengths)))})


def _collate(rows: list[dict]) -> dict[str, torch.Tensor]:
    """Row ids and the padded width of the batch (its longest row): enough to check order and padding."""
    return {
        "labels": torch.tensor([row["labels"] for row in rows]),
        "width": torch.tensor(max(len(row["input_ids"]) for row in rows)),
    }


def _batches(loader) -> list[list[int]]:
    return [batch["labels"].tolist() for batch in loader]


def _padded_tokens(loader) -> int:
    return sum(int(batch["width"]) * len(batch["labels"]) for batch in loader)


def _prepared(group_by_length: bool, batch_size: int = 16):
    accelerator = Accelerator(cpu=True, dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True))
    loader = make_train_loader(_dataset(), batch_size, _collate, group_by_length, 0, seed=3)
    return accelerator, accelerator.prepare(loader)


def test_token_lengths_follow_a_selected_dataset():
    assert token_lengths(_dataset([3, 1, 2]).select([2, 0])) == [2, 3]


def test_grouped_order_is_a_seeded_permutation_that_changes_with_the_epoch():
    sampler = LengthGroupedSampler(LENGTHS, 16, seed=3)
    first = list(sampler)
    assert sorted(first) == list(range(len(LENGTHS)))
    assert list(LengthGroupedSampler(LENGTHS, 16, seed=3)) == first
    assert list(LengthGroupedSampler(LENGTHS, 16, seed=4)) != first
    sampler.set_epoch(1)
    assert list(sampler) != first
    sampler.set_epoch(0)
    assert list(sampler) == first


def test_the_first_batch_holds_the_longest_row():
    order = list(LengthGroupedSampler(LENGTHS, 16, seed=3))
    assert LENGTHS[order[0]] == max(LENGTHS)


def test_grouping_pads_less_than_random_batches():
    plain = make_train_loader(_dataset(), 16, _collate, False, 0, seed=3)
    grouped = make_train_loader(_dataset(), 16, _collate, True, 0, seed=3)
    assert _padded_tokens(grouped) < 0.8 * _padded_tokens(plain)
    assert _padded_tokens(grouped) >= sum(LENGTHS)


@pytest.mark.parametrize("group_by_length", [False, True])
def test_resume_mid_epoch_sees_the_rest_of_the_same_epoch(group_by_length):
    """As the loop resumes: a fresh prepared loader, ``set_epoch``, then the batches already done skipped."""
    _, loader = _prepared(group_by_length)
    loader.set_epoch(0)
    epoch0 = _batches(loader)
    loader.set_epoch(1)
    epoch1 = _batches(loader)
    assert epoch0 != epoch1
    for resume in ("islice", "skip_first_batches"):
        accelerator, fresh = _prepared(group_by_length)
        fresh.set_epoch(1)
        rest = itertools.islice(fresh, 5, None) if resume == "islice" else accelerator.skip_first_batches(fresh, 5)
        assert _batches(rest) == epoch1[5:]


def test_iterating_never_draws_from_the_global_rng():
    torch.manual_seed(0)
    expected = torch.rand(1)
    for group_by_length in (False, True):
        _, loader = _prepared(group_by_length)
        torch.manual_seed(0)
        _batches(loader)
        assert torch.equal(torch.rand(1), expected)


def test_two_shards_split_the_same_grouped_order():
    loader = make_train_loader(_dataset(), 16, _collate, True, 0, seed=3)
    whole = _batches(loader)
    shards = [
        _batches(prepare_data_loader(loader, num_processes=2, process_index=rank, put_on_device=False))
        for rank in (0, 1)
    ]
    for rank, shard in enumerate(shards):  # the last batch of an uneven split is topped up by Accelerate
        assert shard[:-1] == whole[rank::2][: len(shard) - 1]


def test_workers_give_the_same_batches():
    single = make_train_loader(_dataset(), 16, _collate, True, 0, seed=3)
    workers = make_train_loader(_dataset(), 16, _collate, True, 2, seed=3)
    assert _batches(workers) == _batches(single)
