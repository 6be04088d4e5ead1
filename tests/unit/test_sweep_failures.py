"""The sweep report belongs to one multirun: values refused before a sweep are listed as its failed points, and a
later sweep in the same process (tests, notebooks, `adamix-table` calling the CLI in process) starts clean."""

from __future__ import annotations

import json
import os
from pathlib import Path

from adamix_runner.cli import sweep_failures


def _start_and_read(report: sweep_failures.SweepReport) -> list[dict]:
    report.on_multirun_start(config=None)
    lines = Path(os.environ[sweep_failures.FAILURES_ENV]).read_text().splitlines()
    report.on_multirun_end(config=None)
    return [json.loads(line) for line in lines]


def test_refused_values_fail_their_own_sweep_only(capsys):
    report = sweep_failures.SweepReport()
    sweep_failures.reject([("peft.adapter_dim=abc", "peft.adapter_dim expects an integer, got 'abc'.")])
    first = _start_and_read(report)
    assert [record["overrides"][0] for record in first] == ["peft.adapter_dim=abc"]
    assert sweep_failures.failed_points() == first
    assert "1 sweep point(s) failed" in capsys.readouterr().out
    assert _start_and_read(report) == []
    assert sweep_failures.failed_points() == []
