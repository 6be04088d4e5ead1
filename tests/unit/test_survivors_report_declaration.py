"""The columns a report reads from a declaration, which mutation testing (`make mutate`, docs/TESTING.md) found
unpinned where a column omits its label or task, where an `also` metric has no short label (a loss), and where a
metric's name has more than one level: the label and id come from its last part."""

from __future__ import annotations

from omegaconf import OmegaConf

from adamix_runner.report import declaration
from adamix_runner.report.declaration import Column
from tests.unit.test_report_behaviour import TOY, _declare


def test_a_column_keyed_by_id_names_its_task_in_itself_and_in_its_also_columns():
    table = {
        "columns": {
            "bleu": {
                "task": "e2e",
                "metric": "test/bleu",
                "label": "BLEU",
                "also": ["test/nist", "test/bertscore/f1", "test/chrf"],
            },
            "qqp": {"metric": "validation/accuracy", "also": ["validation/f1"]},
        },
        "tasks": ["e2e", "qqp", "rte"],
    }
    assert declaration.columns(table) == [
        Column("bleu", "e2e", "test/bleu", "BLEU"),
        Column("bleu:nist", "e2e", "test/nist", "NIST"),  # the main label is the metric's own: the short name alone
        Column("bleu:f1", "e2e", "test/bertscore/f1", "F1"),  # the last part of the name decides
        Column("bleu:chrf", "e2e", "test/chrf", "chrf"),  # no short label: the name's last part
        Column("qqp", "qqp", "validation/accuracy", "qqp"),  # no label: the column's id
        Column("qqp:f1", "qqp", "validation/f1", "qqp F1"),
        Column("rte", "rte", None, "rte"),  # a task without a column: its primary metric
    ]


def test_the_few_shot_study_labels_its_loss_columns_by_task():
    found = [(c.id, c.task, c.metric, c.label) for c in declaration.columns(declaration.load("fewshot_study"))]
    assert ("fewshot_sst2", "fewshot_sst2", "validation/accuracy", "SST-2") in found
    assert ("fewshot_sst2:loss", "fewshot_sst2", "validation/loss", "SST-2 loss") in found
    assert ("fewshot_mpqa:loss", "fewshot_mpqa", "test/loss", "MPQA loss") in found


def test_a_declaration_is_read_with_its_interpolations_resolved(tmp_path, monkeypatch):
    _declare(tmp_path, monkeypatch, TOY | {"title": "${paper_table} over ${tasks.0}"})
    assert OmegaConf.to_container(OmegaConf.load(tmp_path / "toyb.yaml"))["title"] == "${paper_table} over ${tasks.0}"
    assert declaration.load("toyb")["title"] == "table1 over rte"
