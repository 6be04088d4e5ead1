"""`adamix-report` end to end where mutation testing (`make mutate`, docs/TESTING.md) found it unpinned: a sweep's
curves (one panel per task, one line per group named by the keys' last parts, drawn from the group's lowest seed),
its heatmaps (one per combination of the other keys, titled by them), the refusal of a folder without runs, the
Figure 5 violin of a source row whose id has a colon, and `main` reading the command line and printing the paths."""

from __future__ import annotations

import json
import sys

import pytest

from adamix_runner.errors import UserError
from adamix_runner.report import cli
from tests.unit.test_report_behaviour import ADAMIX_ROW, TOY, _declare, acc, config, write_run


def _drawn(written, name):
    return json.loads(next(path for path in written if path.name == name).with_suffix(".json").read_text())


def test_a_sweeps_curves_are_drawn_from_each_groups_lowest_seed(tmp_path):
    root = tmp_path / "sweep"
    for dim in (8, 16):
        for seed in (2, 10):  # seed10/ is read before seed2/
            write_run(root, config("rte", seed, adapter_dim=dim), metrics=acc(0.5), tag=f"d{dim}",
                      curve=[(1, dim + seed / 100)])  # fmt: skip
    written = cli.report(["sweep", f"runs={root}", "name=dims", f"out={tmp_path / 'rep'}"])
    assert (tmp_path / "rep" / "dims.md").read_text().startswith("## sweep: dims\n")
    curves = _drawn(written, "dims-curves.png")
    assert (curves["title"], curves["key"]) == ("dims: training loss", "train/loss")
    assert curves["panels"] == {"rte": {"adapter_dim=8": [[1.0, 8.02]], "adapter_dim=16": [[1.0, 16.02]]}}


def test_a_lone_run_without_a_task_in_its_config_is_one_line_in_a_panel_named_task(tmp_path):
    folder = write_run(tmp_path, config("cola", 0), metrics=acc(0.5), curve=[(2, 3.0)])
    record = json.loads((folder / "results.json").read_text())
    del record["config"]["task"]
    (folder / "results.json").write_text(json.dumps(record))
    written = cli.report(["sweep", f"runs={tmp_path}", f"out={tmp_path / 'rep'}"])
    assert _drawn(written, "sweep-curves.png")["panels"] == {"task": {"runs": [[2.0, 3.0]]}}


def test_a_sweep_over_another_key_gets_one_heatmap_per_value_titled_by_it(tmp_path):
    root = tmp_path / "sweep"
    for share in ("up", "none"):
        for dim in (8, 16):
            for experts in (2, 4):
                value = dim / 100 + experts / 10 + (share == "up") / 100
                cfg = config("rte", 0, adapter_dim=dim, num_experts=experts, share=share)
                write_run(root, cfg, metrics=acc(value), tag=f"{share}{dim}{experts}")
    written = cli.report(["sweep", f"runs={root}", "name=grid"])
    names = [path.name for path in written if "heatmap" in path.name]
    assert names == ["grid-heatmap.png", "grid-heatmap-1.png"]
    first, second = _drawn(written, names[0]), _drawn(written, names[1])
    assert (first["title"], first["metric"]) == ("peft.share=none", "primary metric")
    assert second["title"] == "peft.share=up" and second["values"][0] == pytest.approx([29.0, 49.0])
    single = tmp_path / "single"
    for dim in (8, 16):
        for experts in (2, 4):
            write_run(single, config("rte", 0, adapter_dim=dim, num_experts=experts), metrics=acc(0.5),
                      tag=f"{dim}{experts}")  # fmt: skip
    assert _drawn(cli.report(["sweep", f"runs={single}", "name=one"]), "one-heatmap.png")["title"] == "one"


def test_a_folder_without_runs_is_refused_with_where_it_looked(tmp_path):
    with pytest.raises(UserError, match=f"^no run folders \\(results.json\\) under {tmp_path}.$"):
        cli.report_sweep(tmp_path, tmp_path / "out", "sweep")


def test_the_violin_of_a_source_row_whose_id_has_a_colon_and_one_eval_seed_by_default(tmp_path, monkeypatch):
    root = tmp_path / "out"
    for seed in range(2):
        evaluations = {"random-seed0": acc(0.80 + seed / 100), "random-seed1": acc(0.1), "merge": acc(0.9)}
        write_run(root, config("rte", seed), metrics=acc(0.5), evaluations=evaluations)
    source = TOY | {"rows": [ADAMIX_ROW | {"id": "adamix:up"}]}
    figure = {"id": "fig5c", "title": "fig5c", "kind": "inference", "from": "toyb", "rows": [], "seeds": 2}
    figure |= {key: TOY[key] for key in ("profiles", "tasks", "columns")}
    figure |= {"paper_table": "figure5", "rows_from": ["adamix:up"], "rules": ["merge", "random"]}
    _declare(tmp_path / "tables", monkeypatch, source, figure)
    written = cli.report(["table=fig5c", f"runs={root}", f"out={tmp_path / 'rep'}"])
    drawn = _drawn(written, "fig5c-violin.png")
    assert drawn["title"] == "fig5c: random routing (1 eval seeds per run) vs merged (red)"
    assert drawn["tasks"]["RTE"]["random routing"] == pytest.approx([80.0, 81.0])  # random-seed1 is not drawn
    assert drawn["tasks"]["RTE"]["AdaMix (merged)"] == pytest.approx([90.0])


def test_main_reads_the_command_line_and_prints_each_written_path(tmp_path, monkeypatch, capsys):
    write_run(tmp_path / "sweep", config("rte", 0), metrics=acc(0.5))
    monkeypatch.setattr(sys, "argv", ["adamix-report", "sweep", f"runs={tmp_path / 'sweep'}", "name=cmd"])
    cli.main()
    printed = capsys.readouterr().out.splitlines()
    assert printed == [str(tmp_path / "sweep" / "reports" / name) for name in ("cmd.md", "cmd.tex", "cmd.csv",
                                                                             "cmd-curves.png")]  # fmt: skip
    monkeypatch.setattr(sys, "argv", ["adamix-report", "sweep"])
    with pytest.raises(SystemExit):
        cli.main()
    assert capsys.readouterr().err == "error: adamix-report sweep needs runs=<folder of run folders>.\n"
