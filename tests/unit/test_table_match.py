"""A table row says what it is twice: `overrides` (the run folders adamix-table makes) and `match` (how
adamix-report finds them again). For every cell of every shipped grid table, in each profile, the report's own rule
(report/grid.matches) on the composed config picks exactly the cells that compose to the same config (the same run
folder), of any table, since all tables of a profile share its output root.

Composing each of the ~600 cells takes minutes here, hence slow; tests/unit/test_tables.py checks each row's first
cell in the fast suite.
"""

from __future__ import annotations

import json
from functools import cache

import pytest
from omegaconf import OmegaConf

from adamix_runner.report import grid
from adamix_runner.tables import declaration
from tests.conftest import compose_config

pytestmark = pytest.mark.slow


class _Composed:
    """A composed config read the way the report reads a run's config (RunRecord.get); its identity is the config
    as composed (unresolved: a paper model's path resolves to a package that need not be installed here)."""

    def __init__(self, overrides: tuple[str, ...]):
        self.cfg = compose_config(*overrides)
        self.identity = json.dumps(OmegaConf.to_container(self.cfg, resolve=False), sort_keys=True)
        self._read: dict[str, object] = {}

    def get(self, dotted: str, default=None):
        if dotted not in self._read:
            self._read[dotted] = OmegaConf.select(self.cfg, dotted, default=default)
        return self._read[dotted]


@cache
def _composed(overrides: tuple[str, ...]) -> _Composed:
    return _Composed(overrides)


def _grid_tables():
    return [t for t in declaration.table_ids() if declaration.load(t).kind == "grid"]


@cache
def _cells(profile: str) -> list[tuple[str, object, object]]:
    """(table id, row, cell) for every run row x task of every grid table with this profile."""
    found = []
    for table_id in _grid_tables():
        decl = declaration.load(table_id)
        rows = {row.id: row for row in decl.rows}
        found += [(table_id, rows[cell.row], cell) for cell in declaration.cells(decl, profile)]
    return found


def test_every_grid_table_is_covered_and_every_run_row_has_a_match():
    assert {"table1", "table2", "table6", "demo", "study", "fewshot_study"} <= set(_grid_tables())
    for table_id in _grid_tables():
        for row in declaration.load(table_id).rows:
            assert "not_run" in row or row.get("match"), (table_id, row.id)


@pytest.mark.parametrize("profile", declaration.PROFILES)
def test_each_rows_match_picks_exactly_the_runs_its_overrides_make(profile):
    cells = _cells(profile)
    assert len(cells) > 250  # every cell, not a sample: 305 per profile when written
    wrong = []
    for table_id, row, cell in cells:
        ours = _composed(cell.overrides)
        model = declaration.profile_model(declaration.load(table_id), profile)
        assert ours.get("model.name") == model, (table_id, cell.name)
        picked, same = set(), set()
        for other_id, _, other in cells:
            theirs = _composed(other.overrides)
            if grid.matches(theirs, dict(row.match), cell.task, model):
                picked.add(f"{other_id}:{other.name}")
            if theirs.identity == ours.identity:
                same.add(f"{other_id}:{other.name}")
        if f"{table_id}:{cell.name}" not in picked or picked != same:
            wrong.append((f"{table_id}:{cell.name}", sorted(picked - same), sorted(same - picked)))
    assert wrong == []
