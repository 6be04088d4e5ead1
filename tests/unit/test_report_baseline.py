"""The report's differences from a declared baseline: the intervals equal scipy's (Welch's t for unpaired runs,
the paired t when the seeds pair the runs), the report says which and marks the intervals that exclude 0, and a
baseline that names no row is refused."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import scipy.stats
from omegaconf import OmegaConf

from adamix_runner.errors import UserError
from adamix_runner.report import baseline, cli, declaration, grid
from adamix_runner.report.runs import scan
from adamix_runner.report.stats import paired, seeds_to_resolve, welch, welch_from_stats
from adamix_runner.tables import declaration as tables_declaration

A = [70.1, 68.9, 69.9, 71.4]
B = [66.2, 66.5, 66.0, 67.3]


def scipy_interval(result) -> tuple[float, float]:
    found = result.confidence_interval(0.95)
    return found.low, found.high


def test_welch_equals_scipys_unequal_variance_t_test():
    ours = welch(A, B)
    low, high = scipy_interval(scipy.stats.ttest_ind(A, B, equal_var=False))
    assert (ours.low, ours.high) == pytest.approx((low, high), rel=1e-12)
    assert ours.difference == pytest.approx(sum(A) / 4 - sum(B) / 4)
    assert ours.test == "Welch" and ours.excludes_zero


def test_paired_equals_scipys_related_t_test():
    ours = paired(A, B)
    low, high = scipy_interval(scipy.stats.ttest_rel(A, B))
    assert (ours.low, ours.high) == pytest.approx((low, high), rel=1e-12)
    assert ours.df == 3 and ours.test == "paired"


def test_welch_from_summary_statistics_equals_welch_on_the_values():
    """mean ± sd (n) is all Welch's interval needs: m − s, m, m + s has mean m and sample sd s."""
    ours = welch_from_stats(69.62, 1.19, 3, 66.25, 0.25, 3)
    low, high = scipy_interval(scipy.stats.ttest_ind([68.43, 69.62, 70.81], [66.0, 66.25, 66.5], equal_var=False))
    assert (ours.low, ours.high) == pytest.approx((low, high), rel=1e-9)
    assert not welch_from_stats(1.0, 1.0, 3, 0.0, 1.0, 3).excludes_zero


def test_an_interval_across_zero_is_noise_and_errors_name_the_missing_seeds():
    noise = welch([1.0, 2.0, 3.0], [1.5, 2.5, 2.0])
    assert noise.low < 0 < noise.high and not noise.excludes_zero
    with pytest.raises(ValueError, match="at least 2 values a side"):
        welch([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="as many values as baseline values"):
        paired([1.0, 2.0], [1.0, 2.0, 3.0])


def test_seeds_to_resolve_is_the_first_n_whose_interval_excludes_zero():
    n = seeds_to_resolve(-1.58, 1.04, 0.25)
    assert n is not None and n > 3
    assert welch_from_stats(-1.58, 1.04, n, 0, 0.25, n).excludes_zero
    assert not welch_from_stats(-1.58, 1.04, n - 1, 0, 0.25, n - 1).excludes_zero
    assert seeds_to_resolve(0.0, 1.0, 1.0) is None
    assert seeds_to_resolve(0.01, 5.0, 5.0, most=10) is None


TABLE = {
    "id": "toy_base",
    "title": "toy table with a baseline",
    "paper_table": None,
    "kind": "grid",
    "profiles": {"paper": {"model": "minilm"}},
    "tasks": ["rte", "mrpc"],
    "columns": {"rte": {"metric": "validation/accuracy", "label": "RTE"}, "mrpc": {"label": "MRPC"}},
    "average": {"label": "Avg.", "columns": ["rte", "mrpc"]},
    "seeds": 4,
    "baseline": [["adamix", "adapter"], ["lora", "adapter"], ["other_data", "adapter"]],
    "rows": [
        {"id": "adapter", "label": "Adapter", "match": {"peft.method": "adapter"}},
        {"id": "adamix", "label": "AdaMix", "match": {"peft.method": "adamix"}},
        {"id": "lora", "label": "LoRA", "match": {"peft.method": "lora"}},
        {"id": "other_data", "label": "Adapter, 200 rows", "match": {"peft.method": "adapter_small"}},
    ],
}
VALUES = {  # row -> task -> per-seed accuracy (fractions, as the runner writes them)
    "adapter": {"rte": [0.70, 0.69, 0.71, 0.72], "mrpc": [0.80, 0.81, 0.79, 0.80]},
    "adamix": {"rte": [0.66, 0.665, 0.66, 0.673], "mrpc": [0.805, 0.80, 0.80, 0.81]},
    "lora": {"rte": [0.71, 0.70], "mrpc": [0.82, 0.81, 0.80, 0.83]},
    "other_data": {"rte": [0.64, 0.66, 0.65, 0.63], "mrpc": [0.78, 0.80, 0.77, 0.79]},
}


def write_run(root: Path, method: str, task: str, seed: int, accuracy: float, rows: int) -> None:
    config = {
        "task": {"name": task},
        "model": {"name": "minilm"},
        "peft": {"method": method},
        "data": {"max_train_samples": rows},
        "seed": seed,
    }
    folder = root / "runs" / task / method / f"seed{seed}"
    folder.mkdir(parents=True)
    metrics = {"validation/accuracy": accuracy}
    record = {"status": "completed", "config": config, "metrics": metrics, "primary_metric": "validation/accuracy"}
    (folder / "results.json").write_text(json.dumps(record | {"params": {"inference": 1000}}))


@pytest.fixture
def runs(tmp_path):
    methods = {"adapter": "adapter", "adamix": "adamix", "lora": "lora", "other_data": "adapter_small"}
    for row, tasks in VALUES.items():
        for task, values in tasks.items():
            for seed, value in enumerate(values):
                write_run(tmp_path, methods[row], task, seed, value, 200 if row == "other_data" else 400)
    return tmp_path


def percent(row: str, task: str) -> list[float]:
    return [value * 100 for value in VALUES[row][task]]


def test_each_cell_is_paired_when_the_seeds_pair_the_runs_and_welch_otherwise(runs):
    table = grid.build(TABLE, scan(runs))
    found = {
        (c.row.id, key): cell
        for c in baseline.compare(table, baseline.table_pairs(TABLE))
        for key, cell in c.cells.items()
    }
    same_seeds = found["adamix", "rte"]
    low, high = scipy_interval(scipy.stats.ttest_rel(percent("adamix", "rte"), percent("adapter", "rte")))
    assert same_seeds.test == "paired" and (same_seeds.low, same_seeds.high) == pytest.approx((low, high))
    assert same_seeds.excludes_zero
    fewer_seeds = found["lora", "rte"]  # seeds 0, 1 against 0..3: not paired
    low, high = scipy_interval(
        scipy.stats.ttest_ind(percent("lora", "rte"), percent("adapter", "rte"), equal_var=False)
    )
    assert fewer_seeds.test == "Welch" and (fewer_seeds.low, fewer_seeds.high) == pytest.approx((low, high))
    other_data = found["other_data", "mrpc"]  # the same seeds, but another data.max_train_samples: not paired
    low, high = scipy_interval(
        scipy.stats.ttest_ind(percent("other_data", "mrpc"), percent("adapter", "mrpc"), equal_var=False)
    )
    assert other_data.test == "Welch" and (other_data.low, other_data.high) == pytest.approx((low, high))
    assert not found["adamix", "mrpc"].excludes_zero  # +0.375 points, within the seeds' noise
    averaged = [(a + b) / 2 for a, b in zip(percent("adamix", "rte"), percent("adamix", "mrpc"), strict=True)]
    base = [(a + b) / 2 for a, b in zip(percent("adapter", "rte"), percent("adapter", "mrpc"), strict=True)]
    low, high = scipy_interval(scipy.stats.ttest_rel(averaged, base))
    assert (found["adamix", "average"].low, found["adamix", "average"].high) == pytest.approx((low, high))
    lora = [(a + b) / 2 for a, b in zip(percent("lora", "rte"), percent("lora", "mrpc")[:2], strict=True)]
    low, high = scipy_interval(scipy.stats.ttest_ind(lora, base, equal_var=False))  # LoRA averages seeds 0, 1 only
    assert found["lora", "average"].test == "Welch"
    assert (found["lora", "average"].low, found["lora", "average"].high) == pytest.approx((low, high))


def test_the_report_prints_the_differences_says_which_test_and_marks_what_excludes_zero(runs, tmp_path, monkeypatch):
    monkeypatch.setattr(declaration, "load", lambda name, folder=None: TABLE)
    out = tmp_path / "out"
    written = cli.report(["table=toy_base", f"runs={runs}", f"out={out}"])
    assert out / "toy_base-differences.csv" in written
    page = (out / "toy_base.md").read_text()
    assert "## toy_base: differences from the baseline (95% CI over seeds)" in page
    ours = paired(percent("adamix", "rte"), percent("adapter", "rte"))
    line = next(line for line in page.splitlines() if line.startswith("| AdaMix − Adapter |"))
    assert f"| {ours.format()} paired‡ |" in line
    mrpc = paired(percent("adamix", "mrpc"), percent("adapter", "mrpc"))
    assert f"| {mrpc.format()} paired |" in line  # no ‡: the interval holds 0
    assert "‡: the interval excludes 0" in page
    with (out / "toy_base-differences.csv").open() as handle:
        records = {(r["row"], r["column"]): r for r in csv.DictReader(handle)}
    assert float(records["adamix", "rte"]["low"]) == pytest.approx(ours.low, rel=1e-5)
    assert records["adamix", "rte"]["test"] == "paired" and records["adamix", "rte"]["excludes_zero"] == "True"
    assert records["lora", "rte"]["test"] == "Welch" and records["adamix", "rte"]["baseline"] == "adapter"
    assert r"$^\ddagger$" in (out / "toy_base.tex").read_text()


def test_a_table_without_a_baseline_has_no_differences(runs, tmp_path, monkeypatch):
    monkeypatch.setattr(declaration, "load", lambda name, folder=None: {**TABLE, "baseline": None})
    written = cli.report(["table=toy_base", f"runs={runs}", f"out={tmp_path / 'out'}"])
    assert not any(path.name.endswith("-differences.csv") for path in written)
    assert "differences from the baseline" not in (tmp_path / "out" / "toy_base.md").read_text()


def test_one_baseline_row_compares_every_other_run_row():
    table = {**TABLE, "baseline": "adapter", "rows": [*TABLE["rows"], {"id": "x", "not_run": "no such method"}]}
    assert declaration.baseline_pairs(table, declaration.row_ids(table)) == [
        ("adamix", "adapter"),
        ("lora", "adapter"),
        ("other_data", "adapter"),
    ]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("adaptr", "baseline names 'adaptr', which is no row of the table; its rows: adapter, adamix, lora"),
        ([["adamix", "lora_x"]], "baseline names 'lora_x', which is no row"),
        ([["adamix", "adamix"]], "baseline compares row 'adamix' with itself"),
        ({"adamix": "adapter"}, "baseline must be a row id or a list of \\[row, baseline row\\] pairs"),
    ],
)
def test_a_baseline_that_names_no_row_is_refused(spec, message):
    with pytest.raises(UserError, match=message):
        declaration.baseline_pairs({**TABLE, "baseline": spec}, declaration.row_ids(TABLE))
    decl = OmegaConf.create(
        {**TABLE, "id": "toy_base", "baseline": spec, "rows": [{**row, "overrides": []} for row in TABLE["rows"]]}
    )
    with pytest.raises(UserError, match="conf/table/toy_base.yaml: table toy_base: " + message):
        tables_declaration._check(decl, "toy_base.yaml")


def test_inference_rows_are_source_row_and_rule():
    table = {"id": "rules", "kind": "inference", "rows_from": ["a", "b"], "rules": ["merge", "random"]}
    assert declaration.row_ids(table) == ["a:merge", "a:random", "b:merge", "b:random"]
    assert declaration.baseline_pairs({**table, "baseline": "a:merge"}, declaration.row_ids(table))[0] == (
        "a:random",
        "a:merge",
    )


@pytest.mark.parametrize(
    ("table_id", "pairs"),
    [
        ("demo", {("adamix_e6", "adapter_e6"), ("adamix_e20", "adapter_e20"), ("lora", "adapter_e6")}),
        ("study", {("adamix_share_none", "adamix_e6"), ("adamix_lr3e-3", "adapter_lr3e-3")}),
        ("table8", {("no_consistency", "adamix_adapter"), ("no_sharing", "adamix_adapter")}),
        ("table9", {("dim8", "dim48"), ("dim64", "dim48")}),
        ("table10", {("experts1", "experts4"), ("experts8", "experts4")}),
    ],
)
def test_the_declared_tables_compare_with_the_single_adapter_or_adamix(table_id, pairs):
    decl = OmegaConf.to_container(tables_declaration.load(table_id), resolve=True)
    assert pairs <= set(declaration.baseline_pairs(decl, declaration.row_ids(decl)))


def test_inference_rules_are_compared_paired_on_the_same_runs(tmp_path, monkeypatch):
    """The rules of an inference table evaluate the same runs: each seed pairs its rule with its merge."""
    source = {**TABLE, "tasks": ["rte"], "columns": {"rte": {"label": "RTE"}}, "baseline": None, "average": None}
    rules = {
        "id": "toy_rules",
        "kind": "inference",
        "from": "toy_base",
        "rows_from": ["adamix"],
        "rules": ["merge", "ensemble"],
        "baseline": [["adamix:ensemble", "adamix:merge"]],
    }
    monkeypatch.setattr(declaration, "load", lambda name, folder=None: rules if name == "toy_rules" else source)
    merged, ensemble = [0.66, 0.665, 0.66, 0.673], [0.67, 0.668, 0.665, 0.68]
    for seed, value in enumerate(merged):
        write_run(tmp_path, "adamix", "rte", seed, value, 400)
        folder = tmp_path / "runs" / "rte" / "adamix" / f"seed{seed}" / "evaluations"
        folder.mkdir()
        for rule, found in (("merge", value), ("ensemble", ensemble[seed])):
            (folder / f"{rule}.json").write_text(json.dumps({"rule": rule, "metrics": {"validation/accuracy": found}}))
    table = grid.build(rules, scan(tmp_path))
    [comparison] = baseline.compare(table, baseline.table_pairs(rules))
    ours = comparison.cells["rte"]
    low, high = scipy_interval(scipy.stats.ttest_rel([v * 100 for v in ensemble], [v * 100 for v in merged]))
    assert ours.test == "paired" and (ours.low, ours.high) == pytest.approx((low, high))


@pytest.mark.parametrize("flag", ["--help", "-h", "help"])
def test_help_prints_the_usage_and_writes_nothing(flag, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli.main([flag])  # returns: exit code 0
    usage = capsys.readouterr().out
    assert usage.startswith("`adamix-report`: run folders") and "differences.csv" in usage
    assert list(tmp_path.iterdir()) == []
