"""conf/table/table6.yaml: every cell composes, validates and satisfies its row's match; the counts it promises."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from adamix_runner.config.checks import validate
from adamix_runner.config.compose import CONFIG_DIR
from adamix_runner.tables import declaration
from tests.conftest import compose_config

TABLE = OmegaConf.load(Path(CONFIG_DIR) / "table" / "table6.yaml")


def test_table6_declares_the_grid_without_paper_numbers():
    assert (TABLE.id, TABLE.kind, TABLE.paper_table, TABLE.seeds) == ("table6", "grid", None, 5)
    assert "not available" in TABLE.note
    assert [TABLE.columns[t].label for t in TABLE.tasks] == ["MNLI", "RTE", "QQP", "SST-2", "Subj", "MPQA"]
    assert [row.id for row in TABLE.rows] == [
        "full", "head", "bitfit", "prompt_tuning", "houlsby", "list_adapter", "adamix"
    ]  # fmt: skip


def _cell(profile: str, row_index: int, task: str):
    """The cell exactly as adamix-table and the sweeper compose it (tables/declaration.py)."""
    row = TABLE.rows[row_index]
    (cell,) = [c for c in declaration.cells(declaration.load("table6"), profile) if (c.row, c.task) == (row.id, task)]
    cfg = compose_config(*cell.overrides)
    validate(cfg)
    return row, cfg


@pytest.mark.parametrize("profile", ["smoke", "paper"])
@pytest.mark.parametrize("index", range(len(TABLE.rows)))
def test_every_row_composes_validates_and_matches(profile, index):
    """Each row on one of the tasks (in turn), so every row and every task is composed at least once."""
    task = TABLE.tasks[index % len(TABLE.tasks)]
    row, cfg = _cell(profile, index, task)
    for key, value in row.match.items():
        assert OmegaConf.select(cfg, key) == value, (row.id, key)
    assert cfg.model.name == TABLE.profiles[profile].model


@pytest.mark.parametrize("task", list(TABLE.tasks))
def test_every_column_reports_its_task_primary_metric(task):
    _, cfg = _cell("smoke", len(TABLE.rows) - 1, task)
    assert TABLE.columns[task].metric == cfg.task.primary_metric
    assert cfg.fewshot.data_dir == "../shared/data/fewshot-list" and cfg.train.max_steps == 2
