"""The report's Recipe column says when a row's runs did not train in the official fp32 (the paper profiles' bf16),
from what the run recorded: results.json `runtime` when present, else its config."""

from __future__ import annotations

import json
from pathlib import Path

from adamix_runner.report import render
from adamix_runner.report.grid import Row
from adamix_runner.report.runs import RunRecord, load_run


def _row(*runs: RunRecord) -> Row:
    return Row(
        id="adamix", label="AdaMix", cells={}, sources={"mnli": "paper", "rte": "ours: x"}, runs={"mnli": [*runs]}
    )


def test_the_recipe_column_names_a_precision_other_than_fp32():
    bf16 = RunRecord(folder=Path("a"), status="completed", config={"train": {"mixed_precision": "bf16"}})
    fp32 = RunRecord(folder=Path("b"), status="completed", config={"train": {"mixed_precision": "no"}})
    assert render._recipe(_row(fp32)) == "ours+paper"
    assert render._recipe(_row(bf16, fp32)) == "ours+paper; bf16, not the official fp32"
    fp32.runtime = {"mixed_precision": "no", "allow_tf32": True}  # what actually ran wins over the config
    assert render._recipe(_row(fp32)) == "ours+paper; tf32, not the official fp32"


def test_a_runs_runtime_record_is_read(tmp_path):
    record = {
        "status": "completed",
        "config": {"train": {"mixed_precision": "bf16"}},
        "runtime": {"mixed_precision": "no"},
    }
    (tmp_path / "results.json").write_text(json.dumps(record))
    assert load_run(tmp_path / "results.json").precision() == "fp32"


def test_a_run_without_a_runtime_record_reads_tf32_from_its_config():
    allowed = RunRecord(Path("a"), "completed", {"train": {"mixed_precision": "no", "allow_tf32": True}})
    assert allowed.precision() == "tf32"
    assert RunRecord(Path("b"), "completed", {"train": {"allow_tf32": True}}).precision() == "tf32"
    assert RunRecord(Path("c"), "completed", {}).precision() == "fp32"  # a config from before either key
    allowed.runtime = {"mixed_precision": "no", "allow_tf32": False}  # what actually ran wins
    assert allowed.precision() == "fp32"
