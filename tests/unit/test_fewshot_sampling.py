"""Few-shot data without ../shared: K rows sampled from a task's pool by a seeded shuffle, and a LiST-format folder
made here (seed k reads split k + 1, the train file must hold K rows), so these run in every checkout."""

from __future__ import annotations

import pytest

from adamix_runner.config.compose import compose_config
from adamix_runner.errors import UserError
from adamix_runner.tasks import fewshot
from tests.conftest import FIXTURES

LOCAL = [
    "task=local",
    f"task.data_files.train={FIXTURES / 'local' / 'sentiment.csv'}",
    "task.label_field=sentiment",
    "task.metrics=[accuracy]",
    "task.prompt.template='*cls**sent_0*_It_was*mask*.*sep+*'",
    "task.prompt.label_words=[terrible,okay,great]",
    "model=tiny-roberta",
    "peft=adamix_list",
]


def _train_texts(cfg, seed: int) -> list[str]:
    task = fewshot.load(cfg.task, cfg.data, fewshot.options(cfg.fewshot, seed))
    field = cfg.task.text_fields[0]
    return list(task.splits["train"][field])


def test_k_rows_of_the_pool_by_a_seeded_shuffle():
    cfg = compose_config(*LOCAL, "fewshot.k=8")
    everything = _train_texts(compose_config(*LOCAL, "fewshot.k=null"), 0)
    by_seed = {seed: _train_texts(cfg, seed) for seed in (0, 1, 2)}
    for rows in by_seed.values():
        assert len(rows) == len(set(rows)) == 8 and set(rows) <= set(everything)
    assert _train_texts(cfg, 1) == by_seed[1]  # reproducible
    assert len({tuple(rows) for rows in by_seed.values()}) == 3  # another seed, another sample
    assert all(rows != everything[:8] for rows in by_seed.values())  # not the pool's first rows
    with pytest.raises(UserError, match=f"fewshot.k=99 exceeds the {len(everything)} training rows"):
        _train_texts(compose_config(*LOCAL, "fewshot.k=99"), 0)


def _list_folder(root, split: int, rows: int, tag: str) -> None:
    folder = root / "mpqa" / f"4-{split}"
    folder.mkdir(parents=True)
    (folder / "train.csv").write_text("".join(f"{i % 2},{tag} sentence {i}\n" for i in range(rows)))
    (folder / "test.csv").write_text("".join(f"{i % 2},test sentence {i}\n" for i in range(6)))


def test_seed_k_reads_list_split_k_plus_1_and_its_train_file_must_hold_k_rows(tmp_path):
    for split in (1, 2):
        _list_folder(tmp_path, split, 4, f"split{split}")
    cfg = compose_config("task=fewshot_mpqa", "model=tiny-roberta", f"fewshot.data_dir={tmp_path}", "fewshot.k=4")
    assert _train_texts(cfg, 0) == [f"split1 sentence {i}" for i in range(4)]
    assert _train_texts(cfg, 1) == [f"split2 sentence {i}" for i in range(4)]
    pinned = compose_config("task=fewshot_mpqa", "model=tiny-roberta", f"fewshot.data_dir={tmp_path}", "fewshot.k=4")
    pinned.fewshot.split_seed = 2
    assert _train_texts(pinned, 0)[0] == "split2 sentence 0"
    _list_folder(tmp_path, 3, 3, "short")
    with pytest.raises(UserError, match=r"4-3/train.csv has 3 rows, expected fewshot.k=4"):
        _train_texts(cfg, 2)
