"""`adamix-report` end to end where mutation testing (`make mutate`, docs/TESTING.md) found it unpinned: a sweep's
curves (one panel per task, one line per group named by the keys' last parts, drawn from the group's lowest seed),
its heatmaps (one per combination of the other keys, titled by them), the refusal of a folder without runs, the
Figure 5 violin (a source row whose id has a colon, a column's own metric, no merge rule), `seeds=` reaching every
requested table, the smoke profile's default folders, a runs folder that does not exist yet, the refusals' whole
messages, the average's columns deciding whether its difference is paired, and `main` reading the command line and
printing the paths."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest

from adamix_runner.errors import UserError
from adamix_runner.report import cli
from tests.unit.test_report_baseline import TABLE as BASELINE_TABLE
from tests.unit.test_report_baseline import write_run as write_minilm_run
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


def _sheet_notes(path: Path) -> str:
    return path.read_text().split("\n- ", 1)[1]


def test_seeds_reach_every_table_that_all_requests(tmp_path, monkeypatch):
    root = tmp_path / "out"
    for seed in range(3):
        write_run(root, config("rte", seed), metrics=acc(0.70 + seed / 100))
    _declare(tmp_path / "tables", monkeypatch, TOY, TOY | {"id": "toyc"})
    written = cli.report(["table=all", f"runs={root}", f"out={tmp_path / 'rep'}", "seeds=2"])
    assert [path.name for path in written if path.suffix == ".md"] == ["toyb.md", "toyc.md"]
    for name in ("toyb", "toyc"):
        page = (tmp_path / "rep" / f"{name}.md").read_text()
        assert "of seeds 0..1, model roberta-large" in page and "| 70.50 ± 0.71 (2) |" in page
    cli.report(["table=toyb", f"runs={root}", f"out={tmp_path / 'one'}", "seeds=1"])
    assert "of seed 0, model roberta-large" in _sheet_notes(tmp_path / "one" / "toyb.md")


def test_the_smoke_profile_reads_and_writes_under_outputs_smoke_by_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_run(Path("outputs/smoke"), config("rte", 0, model="tiny-roberta"), metrics=acc(0.6))
    write_run(Path("outputs"), config("rte", 0), metrics=acc(0.9))  # the paper profile's runs
    _declare(tmp_path / "tables", monkeypatch, TOY)
    written = cli.report(["table=toyb", "profile=smoke"])
    assert written[0] == Path("outputs/smoke/reports/toyb.md")
    assert "| 60.00 (1) |" in written[0].read_text()
    with pytest.raises(UserError, match=r"^table toyb has no profile 'gpu'; it has: paper, smoke"):
        cli.report(["table=toyb", "profile=gpu"])


def test_a_runs_folder_that_does_not_exist_yet_reports_every_cell_missing(tmp_path, monkeypatch):
    _declare(tmp_path / "tables", monkeypatch, TOY)
    written = cli.report(["table=toyb", f"runs={tmp_path / 'not-yet'}", f"out={tmp_path / 'rep'}"])
    with next(path for path in written if path.suffix == ".csv").open() as handle:
        assert {(row["column"], row["status"]) for row in csv.DictReader(handle)} == {
            ("rte", "missing"),
            ("mrpc", "missing"),
            ("average", "incomplete"),
        }
    curves = _drawn(written, "toyb-curves.png")
    assert curves["title"] == "toyb: training loss" and curves["panels"] == {"(no curves)": {}}


def test_a_value_may_hold_an_equals_sign_and_a_bad_argument_gets_the_whole_usage():
    assert cli.parse(["sweep", "runs=multirun/peft.num_experts=4"]) == (
        "sweep",
        {"runs": "multirun/peft.num_experts=4"},
    )
    with pytest.raises(UserError) as unknown:
        cli.parse(["tabel=1"])
    assert str(unknown.value) == (
        "unknown argument 'tabel=1'; use key=value with keys name, out, profile, runs, seeds, table, or `sweep`."
    )
    with pytest.raises(UserError) as no_table:
        cli.parse([])
    assert str(no_table.value) == (
        "say which table: adamix-report table=table1 (or table=all), or adamix-report sweep runs=DIR."
    )


def test_a_grid_row_named_like_a_rule_draws_no_violin(tmp_path, monkeypatch):
    write_run(tmp_path / "out", config("rte", 0), metrics=acc(0.8))
    _declare(tmp_path / "tables", monkeypatch, TOY | {"rows": [ADAMIX_ROW | {"id": "adamix:random"}]})
    written = cli.report(["table=toyb", f"runs={tmp_path / 'out'}", f"out={tmp_path / 'rep'}"])
    assert not any("violin" in path.name for path in written)


def test_the_violin_draws_the_columns_own_metric_and_no_merged_dot_without_a_merge_rule(tmp_path, monkeypatch):
    root = tmp_path / "out"
    for seed in range(2):
        found = {"validation/accuracy": 0.5, "validation/f1": 0.70 + seed / 100}
        write_run(root, config("rte", seed), metrics=acc(0.5), evaluations={"random-seed0": found})
    source = TOY | {"columns": {"rte": {"metric": "validation/f1", "label": "RTE"}}, "tasks": ["rte"]}
    figure = {"id": "fig5d", "title": "fig5d", "kind": "inference", "from": "toyb", "rows": [], "seeds": 2}
    figure |= {key: source[key] for key in ("profiles", "tasks", "columns")}
    figure |= {"paper_table": "figure5", "rows_from": ["adamix"], "rules": ["random"]}
    _declare(tmp_path / "tables", monkeypatch, source, figure)
    written = cli.report(["table=fig5d", f"runs={root}", f"out={tmp_path / 'rep'}"])
    rte = _drawn(written, "fig5d-violin.png")["tasks"]["RTE"]
    assert rte["random routing"] == pytest.approx([70.0, 71.0]) and "AdaMix (merged)" not in rte


def test_the_average_is_paired_when_its_own_columns_pair_the_runs(tmp_path, monkeypatch):
    for method in ("adapter", "adamix"):
        for seed, value in enumerate((0.70, 0.72, 0.71)):
            write_minilm_run(tmp_path, method, "rte", seed, value + (method == "adamix") / 100, 400)
            write_minilm_run(tmp_path, method, "mrpc", seed, value, 400 if method == "adapter" else 200)
    table = BASELINE_TABLE | {"average": {"label": "Avg.", "columns": ["rte"]}, "baseline": [["adamix", "adapter"]]}
    table |= {"seeds": 3, "rows": [row | {"overrides": [f"peft={row['id']}"]} for row in BASELINE_TABLE["rows"][:2]]}
    _declare(tmp_path / "tables", monkeypatch, table)
    cli.report(["table=toy_base", f"runs={tmp_path}", f"out={tmp_path / 'rep'}"])
    with (tmp_path / "rep" / "toy_base-differences.csv").open() as handle:
        tests = {row["column"]: row["test"] for row in csv.DictReader(handle)}
    assert tests == {"rte": "paired", "mrpc": "Welch", "average": "paired"}  # MRPC's runs saw other data


def test_a_sweep_line_is_named_by_the_last_part_of_a_nested_key(tmp_path):
    for dropout in (0.0, 0.1):
        cfg = config("rte", 0) | {"model": {"name": "roberta-large", "config_overrides": {"dropout": dropout}}}
        write_run(tmp_path, cfg, metrics=acc(0.5), tag=f"p{dropout}", curve=[(1, 1.0 + dropout)])
    written = cli.report(["sweep", f"runs={tmp_path}", f"out={tmp_path / 'rep'}"])
    assert set(_drawn(written, "sweep-curves.png")["panels"]["rte"]) == {"dropout=0.0", "dropout=0.1"}
