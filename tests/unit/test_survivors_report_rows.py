"""Which runs and which recipe source a row of the report shows, which mutation testing (`make mutate`,
docs/TESTING.md) found unpinned: a row's own "ours: ..." source wins over the task's recipe (and is the row's note), a
row that is not "ours" takes the recipe's source, or its own without a recipe, and a row not run none; match values
compare as written or as strings; eval_only runs are never a cell's; the paper's labels compare without markers, case
or spacing; an unknown paper table has no rows; the table's title, model, row labels and notes on the paper's
numbers (and #Param's decimals); a paper_row the paper does not have, refused with the rows it has."""

from __future__ import annotations

import pytest

from adamix_runner.errors import UserError
from adamix_runner.report import grid, paper
from adamix_runner.report.runs import scan
from tests.unit.test_report_behaviour import ADAMIX_ROW, acc, config, write_run

TABLE = {
    "id": "sources",
    "title": "rows and their recipe sources",
    "kind": "grid",
    "profiles": {"paper": {"model": "roberta-large"}},
    "tasks": ["rte", "mrpc"],
    "columns": {
        "rte": {"metric": "validation/accuracy", "label": "RTE"},
        "mrpc": {"metric": "validation/accuracy", "label": "MRPC"},
    },
    "recipes": {"rte": {"overrides": ["train.lr=1e-3"], "source": "paper: the official RTE script"}},
    "seeds": 1,
    "rows": [
        {**ADAMIX_ROW, "id": "ours", "source": "ours: lr 1e-2"},
        {**ADAMIX_ROW, "id": "cited", "source": "Hu et al. (2021)"},
        {**ADAMIX_ROW, "id": "plain"},
        {"id": "quoted", "not_run": "the paper's number only"},  # no label: its id
    ],
}


def test_an_ours_source_wins_over_the_tasks_recipe_and_others_take_the_recipes():
    table = grid.build(TABLE, [], "paper")
    rows = {row.id: row for row in table.rows}
    assert (table.model, rows["quoted"].label, rows["plain"].label) == ("roberta-large", "quoted", "AdaMix")
    assert (rows["ours"].own_source, rows["ours"].sources) == (
        "ours: lr 1e-2",
        {"rte": "ours: lr 1e-2", "mrpc": "ours: lr 1e-2"},
    )
    assert rows["cited"].own_source == "" and rows["cited"].sources == {
        "rte": "paper: the official RTE script",
        "mrpc": "Hu et al. (2021)",  # no recipe for the task: the row's own
    }
    assert rows["plain"].sources == {"rte": "paper: the official RTE script", "mrpc": ""}
    assert rows["quoted"].sources == {"rte": "", "mrpc": ""}  # a row not run has no recipe


def test_match_values_compare_as_written_or_as_strings_and_eval_only_runs_are_never_a_cells(tmp_path):
    write_run(tmp_path, config("rte", 0, adapter_dim="16"), metrics=acc(0.7), tag="string")
    write_run(tmp_path, config("mrpc", 0, adapter_dim=16.0), metrics=acc(0.8), tag="float")
    write_run(tmp_path, {**config("rte", 0), "eval_only": True}, metrics=acc(0.1), tag="evaluation")
    runs = {(run.get("task.name"), bool(run.get("eval_only"))): run for run in scan(tmp_path)}
    string, float_run, evaluation = runs["rte", False], runs["mrpc", False], runs["rte", True]
    assert grid.matches(string, {"peft.adapter_dim": 16}, "rte", "roberta-large")  # "16" as a string
    assert grid.matches(float_run, {"peft.adapter_dim": 16}, "mrpc", "roberta-large")  # 16.0 == 16
    assert not grid.matches(evaluation, {"peft.adapter_dim": 16}, "rte", "roberta-large")


def test_paper_labels_compare_without_markers_parentheses_case_or_spacing():
    assert paper.normalize("  Pfeiffer   Adapter† (3.0M) ") == "pfeiffer adapter 3.0m"
    assert paper.normalize("UNIPELT (AP)◇") == paper.normalize("UniPELT (AP)") == "unipelt ap"


def test_an_unknown_paper_table_has_no_rows():
    assert paper.rows("table42") == {}
    assert "AdaMix" in paper.rows("table1")


def test_the_tables_notes_say_where_the_papers_numbers_come_from_or_that_there_are_none(monkeypatch):
    bare = {key: value for key, value in TABLE.items() if key != "title"}
    monkeypatch.setattr(paper, "load", lambda: {"table9": {"source": "§7.9", "note": "Avg over F1"}})
    quoted = grid.build({**bare, "paper_table": "table9"}, [], "paper")
    assert quoted.notes[:2] == ["paper: §7.9", "paper: Avg over F1"] and quoted.title == "sources"  # no title: id
    assert "the paper's numbers for this table were not retrieved: ours only" not in quoted.notes
    ours = grid.build({**TABLE, "paper_table": None}, [], "paper")
    assert ours.title == "rows and their recipe sources"
    assert ours.notes[0] == "the paper's numbers for this table were not retrieved: ours only"
    assert quoted.params_decimals == ours.params_decimals == 2  # #Param as 0.81M unless the paper's table says


def test_a_paper_row_that_the_paper_does_not_have_is_refused_with_the_rows_it_has(monkeypatch):
    rows = [{"label": "LoRA", "params": "0.8M"}, {"label": "AdaMix", "params": "0.8M"}]
    monkeypatch.setattr(paper, "load", lambda: {"table9": {"rows": rows}})
    assert paper.row("table9", "adamix ") is rows[1]
    with pytest.raises(UserError) as refused:
        paper.row("table9", "BitFit")
    assert str(refused.value) == "paper_row 'BitFit' is not a row of the paper's table9; its rows: LoRA, AdaMix."
