"""The sheet `adamix-report name=...` writes for any sweep, which mutation testing (`make mutate`, docs/TESTING.md)
found unpinned beyond its shape: the header, groups in numeric order with an absent key last as "–", the newest
completed run of a seed counting over an older one without the metric, a failed seed named beside the mean, the
parameter count and training time, and the CSV records (mean, sample std, n, status)."""

from __future__ import annotations

from adamix_runner.report import sweep
from adamix_runner.report.runs import scan
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
