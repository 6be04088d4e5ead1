"""What the report's figures draw, read back from their artists (<name>.json beside each PNG), where mutation
testing (`make mutate`, docs/TESTING.md) found it unpinned: the violin of a task only where its evaluations differ,
the note of a task without any, the paper's marks only on the tasks the paper has, an empty violin figure, the
legends, the panels of the curves that have points, and the heatmap's missing squares, the numbers written in the
squares, its title and labels."""

from __future__ import annotations

import json

from adamix_runner.report import figures


def _drawn(path):
    return json.loads(path.with_suffix(".json").read_text())


def test_a_violin_per_task_whose_evaluations_differ_and_the_paper_where_it_has_the_task(tmp_path):
    samples = {"RTE": [1.0, 2.0, 3.0], "CoLA": [5.0, 5.0], "MRPC": [], "SST-2": [7.0, 8.0]}
    merged = {"RTE": 2.5, "CoLA": None, "MRPC": 4.0, "SST-2": None}
    path = figures.violin(samples, merged, tmp_path / "v.png", "toy violin", {"RTE": (1.5, 3.5, 2.0)})
    assert _drawn(path) == {
        "title": "toy violin",
        "legend": ["random routing", "AdaMix (merged)", "paper: random range", "paper: AdaMix"],
        "tasks": {
            "RTE": {
                "violin": True,
                "notes": [],
                "random routing": [1.0, 2.0, 3.0],
                "AdaMix (merged)": [2.5],
                "paper: random range": [1.5, 3.5],
                "paper: AdaMix": [2.0],
            },
            "CoLA": {"violin": False, "notes": [], "random routing": [5.0, 5.0]},  # one value: no spread to draw
            "MRPC": {"violin": False, "notes": ["not evaluated"], "random routing": [], "AdaMix (merged)": [4.0]},
            "SST-2": {"violin": True, "notes": [], "random routing": [7.0, 8.0]},
        },
    }


def test_a_violin_figure_without_tasks_says_so(tmp_path):
    path = figures.violin({}, {}, tmp_path / "v.png", "empty")
    assert _drawn(path)["tasks"] == {"(no tasks)": {"violin": False, "notes": ["not evaluated"], "random routing": []}}
    assert _drawn(path)["legend"] == ["random routing"]


def test_a_heatmap_leaves_a_missing_square_empty_and_writes_each_mean_in_its_square(tmp_path):
    values = {(8, 2): 50.0, (8, 4): 60.125, (16, 2): 70.0}
    path = figures.heatmap(values, tmp_path / "h.png", "rte sweep", "validation/accuracy")
    assert _drawn(path) == {
        "title": "rte sweep",
        "metric": "validation/accuracy",
        "peft.adapter_dim": [8, 16],
        "peft.num_experts": [2, 4],
        "values": [[50.0, 60.125], [70.0, None]],
        "written": [["50.00", "60.12"], ["70.00", None]],
    }


def test_curves_one_panel_per_task_with_the_legend_of_the_first(tmp_path):
    panels = {"rte": {"AdaMix": [(1, 0.9), (2, 0.5)], "Adapter": [(1, 1.0)]}, "mrpc": {"AdaMix": []}, "cola": {}}
    path = figures.curves(panels, tmp_path / "c.png", "toy: training loss", "train/loss")
    assert _drawn(path) == {
        "title": "toy: training loss",
        "key": "train/loss",
        "x": "step",
        "legend": ["AdaMix", "Adapter"],
        "panels": {"rte": {"AdaMix": [[1.0, 0.9], [2.0, 0.5]], "Adapter": [[1.0, 1.0]]}},  # no points: no panel
    }


def test_a_figure_makes_its_folder_and_its_parents(tmp_path):
    path = figures.curves({}, tmp_path / "a" / "b" / "c.png", "t", "train/loss")
    assert path.is_file() and _drawn(path)["panels"] == {"(no curves)": {}}


def test_five_tasks_make_two_rows_of_curves_and_only_the_drawn_panels_are_read_back(tmp_path):
    panels = {f"task{i}": {"AdaMix": [(1, float(i))]} for i in range(5)}
    drawn = _drawn(figures.curves(panels, tmp_path / "c.png", "five", "train/loss"))
    assert drawn["panels"] == {f"task{i}": {"AdaMix": [[1.0, float(i)]]} for i in range(5)}
