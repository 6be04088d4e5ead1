"""The paper's Figure 5 readings beside our rules, which mutation testing (`make mutate`, docs/TESTING.md) found
unpinned: a reading is returned only for the metric the figure plots (a bare metric name counts), the merged rule gets
the paper's AdaMix value, the random rule its range, any other rule nothing; parameter counts as the paper prints
them; and grid.build's refusal of an inference table without `from`."""

from __future__ import annotations

import pytest

from adamix_runner.errors import UserError
from adamix_runner.report import grid, paper
from adamix_runner.report.declaration import Column

RTE = {"random": [69.7, 74.4], "adamix": 74.7}  # paper_results.yaml: BERT-base, read from the violin plot


def test_figure5_reads_the_paper_only_for_the_metric_the_figure_plots():
    assert paper.figure5("bert-base", "rte", "validation/accuracy") == RTE
    assert paper.figure5("bert-base", "rte", "accuracy") == RTE
    assert paper.figure5("bert-base", "cola", "validation/accuracy") is None  # the figure plots Matthews for CoLA
    assert paper.figure5("bert-base", "cola", "validation/matthews") == {"random": [58.7, 62.0], "adamix": 62.9}
    assert paper.figure5(None, "rte", "validation/accuracy") is None
    assert paper.figure5("tiny-bert", "rte", "validation/accuracy") is None


@pytest.mark.parametrize(("rule", "expected"), [("merge", 74.7), ("random", "69.7–74.4"), ("fixed", None)])
def test_each_rule_row_gets_the_papers_reading_for_that_rule(rule, expected):
    row = grid.Row(id=f"adamix:{rule}", label=rule, cells={}, sources={})
    grid._figure5_paper(row, rule, [Column("rte", "rte", "validation/accuracy", "RTE")], "bert-base")
    assert row.paper == {"rte": expected}


def test_an_inference_table_without_from_is_refused_by_name():
    table = {"id": "rules_only", "kind": "inference", "rows": []}
    with pytest.raises(UserError, match=r"^inference table rules_only has no `from` \(the table whose runs it"):
        grid.build(table, [])


def test_parameter_counts_print_as_the_paper_prints_them():
    assert paper.format_params(811_392) == "0.81M" and paper.format_params(811_392, 1) == "0.8M"
    assert paper.format_params(5_000) == "0.01M"  # half a hundredth of a million rounds up
    assert paper.format_params(None) == ""
