"""What an inference table (Table 7, Figure 5) reports when it leaves things to the table whose runs it evaluates,
which mutation testing (`make mutate`, docs/TESTING.md) found unpinned: the source's model, seeds (3 when neither
says), columns and rows by default; its own profile, seeds, columns or tasks when it declares them; unknown
`rows_from` refused by name; the rows' labels and average; a rule's value (one expert when the run does not say how
many, "no metric" when an evaluation lacks the column's metric); the rules and labels of a table; the paper's number
of a task it does not print, or under a bare metric name."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from adamix_runner.errors import UserError
from adamix_runner.report import grid, paper
from adamix_runner.report.declaration import Column
from adamix_runner.report.runs import scan
from adamix_runner.tables import declaration as tables_declaration
from tests.unit.test_report_behaviour import ADAMIX_ROW, acc, config, write_run

ADAPTER_ROW = {"id": "adapter", "overrides": ["peft=adapter"], "match": {"peft.method": "adapter"}}  # no label
SOURCE = {
    "id": "src",
    "title": "the grid whose runs are evaluated",
    "kind": "grid",
    "profiles": {"paper": {"model": "roberta-large"}},
    "tasks": ["rte", "mrpc"],
    "columns": {
        "rte": {"metric": "validation/accuracy", "label": "RTE"},
        "mrpc": {"metric": "validation/accuracy", "label": "MRPC"},
    },
    "seeds": 3,
    "rows": [ADAMIX_ROW, ADAPTER_ROW],
}
MERGED = {"roberta-large": 0.80, "tiny-roberta": 0.50}  # + seed / 100; the adapter's runs 0.1 lower


@pytest.fixture
def runs(tmp_path, monkeypatch):
    folder = tmp_path / "tables"
    folder.mkdir()
    unseeded = {key: value for key, value in SOURCE.items() if key != "seeds"} | {"id": "src_unseeded"}
    for table in (SOURCE, unseeded):
        OmegaConf.save(OmegaConf.create(table), folder / f"{table['id']}.yaml")
    monkeypatch.setattr(tables_declaration, "TABLE_DIR", folder)
    root = tmp_path / "out"
    for model, merged in MERGED.items():
        for method, shift in (("adamix", 0.0), ("adapter", -0.1)):
            for task in ("rte", "mrpc"):
                for seed in range(3):
                    evaluations = {"merge": acc(merged + shift + seed / 100)}
                    cfg = config(task, seed, model, method=method)
                    write_run(root, cfg, metrics=acc(0.1), tag=f"{model}-{method}", evaluations=evaluations)
    return scan(root)


def inference(**keys) -> dict:
    return {"id": "inf", "title": "merged", "kind": "inference", "from": "src", "rules": ["merge"], **keys}


def test_by_default_the_sources_model_seeds_columns_and_rows(runs):
    table = grid.build(inference(), runs, "paper")
    assert [row.id for row in table.rows] == ["adamix:merge", "adapter:merge"]
    assert [row.label for row in table.rows] == ["AdaMix: merging", "adapter: merging"]  # a row's id if no label
    assert [column.label for column in table.columns] == ["RTE", "MRPC"]
    assert table.rows[0].cells["rte"].values == pytest.approx({0: 80.0, 1: 81.0, 2: 82.0})
    assert table.rows[1].cells["mrpc"].values == pytest.approx({0: 70.0, 1: 71.0, 2: 72.0})


def test_a_source_that_names_no_seeds_is_read_for_the_seeds_adamix_table_runs(runs):
    table = grid.build(inference(**{"from": "src_unseeded"}), runs, "paper")
    assert table.rows[0].cells["rte"].values == pytest.approx({0: 80.0, 1: 81.0, 2: 82.0})  # DEFAULT_SEEDS, 3


def test_its_own_profile_seeds_and_columns_win(runs):
    own = {
        "profiles": {"paper": {"model": "tiny-roberta"}},
        "seeds": 2,
        "columns": {"rte": {"metric": "validation/accuracy", "label": "RTE (merged)"}},
        "rows_from": ["adamix"],
        "average": {"label": "Avg."},
    }
    table = grid.build(inference(**own), runs, "paper")
    assert [(row.id, row.label) for row in table.rows] == [("adamix:merge", "merging")]  # one row: the rule alone
    assert table.rows[0].average.values == pytest.approx({0: 50.0, 1: 51.0})
    assert [column.label for column in table.columns] == ["RTE (merged)"]
    assert table.rows[0].cells["rte"].values == pytest.approx({0: 50.0, 1: 51.0})


def test_its_own_tasks_alone_make_the_columns(runs):
    table = grid.build(inference(tasks=["mrpc"], rows_from=["adamix"]), runs, "paper")
    assert table.columns == [Column("mrpc", "mrpc", None, "mrpc")]


def test_rows_from_that_are_not_rows_of_the_source_are_refused_by_name(runs):
    with pytest.raises(UserError, match=r"^table inf: rows_from \['lora'\] are not rows of src\.$"):
        grid.build(inference(rows_from=["adamix", "lora"]), runs, "paper")


def test_a_run_that_names_no_expert_count_is_read_as_one_expert(tmp_path):
    cfg = config("rte", 0, num_experts=None)
    evaluations = {"fixed-expert0": acc(0.6), "fixed-expert1": acc(0.9)}
    write_run(tmp_path, cfg, metrics=acc(0.1), evaluations=evaluations)
    (run,) = scan(tmp_path)
    rte = Column("rte", "rte", "validation/accuracy", "RTE")
    assert grid.rule_value("experts", None)(run, rte) == pytest.approx(60.0)


def test_an_evaluation_without_the_columns_metric_says_so(tmp_path):
    write_run(tmp_path, config("rte", 0), metrics=acc(0.1), evaluations={"random-seed0": {"validation/f1": 0.5}})
    (run,) = scan(tmp_path)
    assert grid.rule_value("random", 1)(run, Column("rte", "rte", "validation/accuracy", "RTE")) == "no metric"


def test_the_rules_of_a_table_and_their_labels():
    declared = {"rows": [{"id": "r", "rule": "random", "label": "Random"}, {"id": "m", "rule": "merge"}]}
    assert grid.rules(declared) == [("random", "Random"), ("merge", "merge")]  # a row without a label: its rule
    assert grid.rules({"rules": ["merge", "custom"]}) == [("merge", "merging"), ("custom", "custom")]
    assert grid.rules({}) == list(grid.RULE_LABELS.items())  # no rules: every rule


def test_the_papers_number_is_none_for_a_task_it_does_not_print_and_reads_a_bare_metric():
    adamix = {"results": {"rte": {"accuracy": 89.2}}}
    assert paper.value(adamix, "rte", "validation/accuracy") == paper.value(adamix, "rte", "accuracy") == 89.2
    assert paper.value(adamix, "wnli", "validation/accuracy") is None
