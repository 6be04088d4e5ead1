"""The sheet `adamix-report name=...` writes for any sweep, which mutation testing (`make mutate`, docs/TESTING.md)
found unpinned beyond its shape: the header, groups in numeric order with an absent key last as "–", the newest
completed run of a seed counting over an older one without the metric, a failed seed named beside the mean, the
parameter count and training time, and the CSV records (mean, sample std, n, status)."""

from __future__ import annotations

from pathlib import Path

from adamix_runner.report import sweep
from adamix_runner.report.runs import RunRecord, scan
from tests.unit.test_report_behaviour import acc, config, write_run


def test_the_sweep_sheet_of_three_groups(tmp_path):
    write_run(tmp_path, config("rte", 0, adapter_dim=16), metrics=acc(0.80), tag="d16s0")
    write_run(tmp_path, config("rte", 1, adapter_dim=16), status="failed", tag="d16s1")
    write_run(tmp_path, config("rte", 0, adapter_dim=8), metrics=acc(0.70), tag="d8s0")
    write_run(tmp_path, config("rte", 1, adapter_dim=8), metrics=acc(0.72), tag="d8s1")
    write_run(tmp_path, config("rte", 0, adapter_dim=8), metrics={"validation/f1": 0.5}, tag="d8s0old", age=50)
    no_dim = config("rte", 0)
    del no_dim["peft"]["adapter_dim"]
    write_run(tmp_path, no_dim, metrics=acc(0.50), tag="nodim")
    sheet, records = sweep.sheet("toy", scan(tmp_path))
    assert sheet.header == ["peft.adapter_dim", "metric", "mean ± std (n)", "#Param", "train s"]
    assert sheet.rows == [  # 8 before 16 (numbers in numeric order), the run without the key last
        ["8", "validation/accuracy", "71.00 ± 1.41 (2)", "811,392", "1.0"],  # 70 and 72: sd = sqrt(2)
        ["16", "validation/accuracy", "80.00 (1) [1 failed]", "811,392", "1.0"],
        ["–", "validation/accuracy", "50.00 (1)", "811,392", "1.0"],
    ]
    assert records == [
        {"peft.adapter_dim": 8, "metric": "validation/accuracy", "mean": "71", "std": "1.41421", "n": 2}
        | {"status": "ok", "params_inference": "811392"},
        {"peft.adapter_dim": 16, "metric": "validation/accuracy", "mean": "80", "std": "", "n": 1}
        | {"status": "failed", "params_inference": "811392"},
        {"peft.adapter_dim": "–", "metric": "validation/accuracy", "mean": "50", "std": "", "n": 1}
        | {"status": "ok", "params_inference": "811392"},
    ]
    assert sheet.notes[0] == "6 run folders, grouped by the config keys that differ between them: peft.adapter_dim"


def _run(config: dict, status: str = "completed", accuracy: float | None = None, mtime: float = 0.0, **fields):
    """A RunRecord as runs.load_run reads it: a completed run names its primary metric, a failed one nothing."""
    completed = status == "completed"
    return RunRecord(
        folder=Path("unused"),
        status=status,
        config=config,
        metrics={} if accuracy is None else {"validation/accuracy": accuracy},
        primary_metric="validation/accuracy" if completed else None,
        mtime=mtime,
        **fields,
    )


def _peft(seed: int = 0, **peft) -> dict:
    return {"task": {"name": "rte"}, "peft": {"method": "adamix", **peft}, "seed": seed}


def test_numbers_come_first_then_text_and_booleans_as_text_then_an_absent_key():
    runs = [
        _run(_peft(share="up"), accuracy=0.5),
        _run(_peft(share="none"), accuracy=0.6),
        _run(_peft(), accuracy=0.7),
    ]
    keys, grouped = sweep.groups(runs)
    assert keys == ["peft.share"] and list(grouped) == [('"none"',), ('"up"',), ("–",)]
    flags = [_run(_peft(flag=value), accuracy=0.5) for value in (True, 3, False)]
    assert list(sweep.groups(flags)[1]) == [("3",), ("false",), ("true",)]  # a boolean is not the number 0 or 1


def test_lists_of_mappings_that_differ_only_in_key_order_are_one_group():
    runs = [
        _run(_peft(0, schedule=[{"b": 1, "a": 2}]), accuracy=0.5),
        _run(_peft(1, schedule=[{"a": 2, "b": 1}]), accuracy=0.7),
    ]
    assert sweep.differing_keys(runs) == []
    page, _ = sweep.sheet("same", runs)
    assert page.header == ["metric", "mean ± std (n)", "#Param", "train s"]
    assert page.rows == [["validation/accuracy", "60.00 ± 14.14 (2)", "", ""]]
    assert page.notes == [
        "2 run folders, grouped by the config keys that differ between them: none",
        "mean ± sample std (n seeds) of each group's primary metric (GLUE metrics in %)",
    ]


def test_a_run_without_a_seed_in_its_config_is_seed_0():
    unseeded = _peft()
    del unseeded["seed"]
    found, _ = sweep.cell([_run(unseeded, accuracy=0.6, mtime=1.0), _run(_peft(0), accuracy=0.7, mtime=2.0)])
    assert found.values == {0: 70.0}


def test_a_completed_run_without_the_metric_outranks_a_newer_failed_one():
    runs = [
        _run(_peft(0), accuracy=None, mtime=1.0),  # completed, but its metrics lack the primary one
        _run(_peft(0), status="failed", mtime=2.0),
        _run(_peft(1), accuracy=0.8, mtime=1.0),
    ]
    page, records = sweep.sheet("toy", runs)
    assert page.rows == [["validation/accuracy", "80.00 (1)", "", ""]]
    assert records[0]["status"] == "no metric" and records[0]["n"] == 1


def test_a_group_of_failed_runs_has_no_metric_and_no_mean():
    runs = [_run(_peft(0), status="failed"), _run(_peft(1), status="failed")]
    found, metric = sweep.cell(runs)
    assert metric == "" and found.stats is None and found.status() == "failed"
    page, records = sweep.sheet("failed", [*runs, _run(_peft(0, adapter_dim=8), accuracy=0.5)])
    assert page.rows[1] == ["–", "", "failed", "", ""]
    assert records[1] == {
        "peft.adapter_dim": "–",
        "metric": "",
        "mean": "",
        "std": "",
        "n": 0,
        "status": "failed",
        "params_inference": "",
    }


def test_a_group_whose_seeds_differ_in_size_lists_both_counts():
    runs = [
        _run(_peft(0, adapter_dim=8, num_experts=2), accuracy=0.5, params={"inference": 1_000}),
        _run(_peft(1, adapter_dim=8, num_experts=2), accuracy=0.6, params={"inference": 2_000}),
        _run(_peft(0, adapter_dim=16, num_experts=4), accuracy=0.7, params={"inference": 3_000}),
    ]
    page, records = sweep.sheet("sizes", runs)
    assert page.rows[0][-2] == "1,000/2,000" and records[0]["params_inference"] == "1000/2000"
    assert page.notes[0].endswith("differ between them: peft.adapter_dim, peft.num_experts")


def test_heatmaps_skip_an_empty_group_and_are_titled_by_the_other_keys_present():
    def at(dim: int, experts: int, lr: float, **peft) -> dict:
        return _peft(adapter_dim=dim, num_experts=experts, **peft) | {"train": {"lr": lr}}

    runs = [
        _run(at(8, 2, 0.1, share="up"), status="failed"),  # the first group in order, with no value
        _run(at(8, 4, 0.1, share="up"), accuracy=0.5),
        _run(at(16, 2, 0.2), accuracy=0.6),
        _run(at(16, 4, 0.2), accuracy=0.7),
    ]
    assert sweep.heatmaps(runs) == {
        "peft.share=up, train.lr=0.1": {(8, 4): 50.0},
        "train.lr=0.2": {(16, 2): 60.0, (16, 4): 70.0},
    }
